//! At the end of every command that wrote a report: append what it did to the report's
//! sidecar (an `Invocation`), and give its summary the job's facts from the sidecar. So the
//! sidecar ends up holding the whole job's story, resumes included, and `report` can tell it
//! later from the files alone.

use std::path::Path;
use std::time::SystemTime;

use super::meta::{Invocation, ReportMeta};
use super::summary::Summary;
use super::summary_json::{JobFacts, rfc3339, round3};

/// What the command knows about itself that its summary does not say.
pub(crate) struct Facts {
    /// When the command started.
    pub(crate) started: SystemTime,
    /// Who sent (`TokenSource::identity`); none for `validate`.
    pub(crate) identity: Option<String>,
    /// The SHA-256 of the input it read.
    pub(crate) input_sha256: String,
    /// `--rate` in requests per second; none for `validate`.
    pub(crate) rate_per_second: Option<f64>,
    /// `--resume`: the command continued the job.
    pub(crate) resume: bool,
}

/// Records the command in the sidecar of `report` and fills in `summary.job`. Never fails the
/// command: the report is the record of what was done, the sidecar's log is a convenience,
/// so a sidecar that cannot be read or written costs a warning, not the run's exit code.
pub(crate) fn record(report: &Path, summary: &mut Summary, facts: Facts) {
    let finished = SystemTime::now();
    summary.started_at = Some(facts.started);
    summary.finished_at = Some(finished);
    summary.rate_per_second = facts.rate_per_second;
    let entry = Invocation {
        command: if facts.resume {
            format!("{} --resume", summary.command)
        } else {
            summary.command.clone()
        },
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: rfc3339(facts.started),
        finished_at: rfc3339(finished),
        identity: facts.identity.clone(),
        input_sha256: Some(facts.input_sha256.clone()),
        elapsed_seconds: Some(summary.elapsed_seconds),
        rows_sent: Some(summary.rows_sent_this_run),
        rows_carried_over: Some(summary.rows_carried_over),
        requests_sent: Some(summary.requests_sent),
        throttled_429: Some(summary.throttled_429),
        rate_per_second: facts.rate_per_second,
        final_rate_per_second: summary.final_rate_per_second.map(round3),
        stopped: summary.stopped.clone(),
        exit_code: Some(summary.exit_code),
        report_sha256: match sha256_of(report) {
            Ok(hex) => Some(hex),
            Err(e) => {
                tracing::warn!(
                    "cannot read the report back to record its SHA-256 ({e}); it cannot be \
                     checked when read as input"
                );
                None
            }
        },
    };
    summary.invocation_command = Some(entry.command.clone());
    let recorded = match ReportMeta::read_if_present(report) {
        Ok(Some(mut meta)) => {
            meta.invocations.push(entry);
            if let Err(e) = meta.write(report) {
                tracing::warn!("{e:#}; the report itself is complete");
            }
            Some(meta)
        }
        Ok(None) => {
            tracing::warn!(
                "the report's sidecar is missing, so this run is not recorded in it; the report itself is complete"
            );
            None
        }
        Err(why) => {
            // Not rewritten: a sidecar this build cannot read may be a newer one.
            tracing::warn!(
                "the report's sidecar cannot be read ({why}), so this run is not recorded in it; the report itself is complete"
            );
            None
        }
    };
    summary.job = match recorded {
        Some(meta) => JobFacts {
            mode: Some(meta.mode.as_str().to_string()),
            tenant: meta.tenant,
            identity: facts.identity.or(meta.identity),
            input: Some(meta.input),
            input_sha256: Some(facts.input_sha256),
            started_at: Some(meta.started_at),
            finished_at: Some(rfc3339(finished)),
        },
        None => JobFacts {
            identity: facts.identity,
            input_sha256: Some(facts.input_sha256),
            finished_at: Some(rfc3339(finished)),
            ..JobFacts::default()
        },
    };
}

/// The SHA-256 of the file at `path`, lowercase hex, read in bounded memory.
fn sha256_of(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf)? {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::meta::ReportMode;
    use crate::report::status::Status;
    use crate::report::summary::Tally;

    fn summary(report: &Path) -> Summary {
        let mut t = Tally::default();
        t.add(Status::Deleted);
        let mut s = Summary::new("run", Path::new("in.csv"), report, &t);
        s.requests_sent = 3;
        s.throttled_429 = 1;
        s.final_rate_per_second = Some(7.5);
        s
    }

    fn facts() -> Facts {
        Facts {
            started: SystemTime::UNIX_EPOCH,
            identity: Some("accessID alice".into()),
            input_sha256: "ab".repeat(32),
            rate_per_second: Some(10.0),
            resume: false,
        }
    }

    #[test]
    fn each_command_is_appended_and_the_job_facts_come_from_the_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.csv");
        ReportMeta::new(
            ReportMode::Delete,
            Some("https://t/x".into()),
            Some("accessID alice".into()),
            Path::new("in.csv"),
            SystemTime::UNIX_EPOCH,
        )
        .with_input(&"ab".repeat(32), 1)
        .write(&report)
        .unwrap();
        for _ in 0..2 {
            let mut s = summary(&report);
            record(&report, &mut s, facts());
            assert_eq!(s.job.mode.as_deref(), Some("delete"));
            assert_eq!(s.job.tenant.as_deref(), Some("https://t/x"));
            assert_eq!(s.job.started_at.as_deref(), Some("1970-01-01T00:00:00Z"));
        }
        let meta = ReportMeta::read_if_present(&report).unwrap().unwrap();
        assert_eq!(meta.invocations.len(), 2);
        let first = &meta.invocations[0];
        assert_eq!(first.command, "run");
        assert_eq!(first.requests_sent, Some(3));
        assert_eq!(first.throttled_429, Some(1));
        assert_eq!(first.rate_per_second, Some(10.0));
        assert_eq!(first.final_rate_per_second, Some(7.5));
    }

    #[test]
    fn a_missing_or_foreign_sidecar_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.csv");
        let mut s = summary(&report);
        record(&report, &mut s, facts());
        assert!(!crate::report::meta::sidecar_path(&report).exists());
        assert_eq!(s.job.identity.as_deref(), Some("accessID alice"));
        let newer = r#"{"schema": 2, "something": "else"}"#;
        std::fs::write(crate::report::meta::sidecar_path(&report), newer).unwrap();
        record(&report, &mut s, facts());
        assert_eq!(
            std::fs::read_to_string(crate::report::meta::sidecar_path(&report)).unwrap(),
            newer
        );
    }
}
