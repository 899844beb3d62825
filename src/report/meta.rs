//! The report's sidecar, `<report>.meta.json` (`leavers.report.csv` →
//! `leavers.report.meta.json`): which tenant, mode and identity a report was made with, by
//! which version, from which input, since when. Written when a report is created; `--resume`
//! reads it first and refuses to continue a job against another tenant or in another mode (a
//! rehearsal's report is no record of production). Versioned by `schema`; README documents it.
//!
//! Within schema 1, fields are only ever added, each with a default: a sidecar written before a
//! field existed still reads, and an older build ignores fields it does not know. Every command
//! that writes the report appends an [`Invocation`] when it ends, so `report` can tell the
//! whole job's story (started, resumed, requests, 429s, rates) from the files alone.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::files;
use super::writer::ReportWriter;

/// The sidecar format this build writes and reads.
pub(crate) const SCHEMA: u32 = 1;

/// What a report was made by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ReportMode {
    /// `run` (with or without `--verify`).
    Delete,
    /// `run --dry-run`.
    DryRun,
    /// `validate`.
    Validate,
    /// `disable`.
    Disable,
    /// `disable --dry-run`: its own mode, so a resume never mixes a dry run's rows with a
    /// real one's.
    DisableDryRun,
    /// `enable`.
    Enable,
    /// `enable --dry-run`.
    EnableDryRun,
}

impl ReportMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReportMode::Delete => "delete",
            ReportMode::DryRun => "dry-run",
            ReportMode::Validate => "validate",
            ReportMode::Disable => "disable",
            ReportMode::DisableDryRun => "disable-dry-run",
            ReportMode::Enable => "enable",
            ReportMode::EnableDryRun => "enable-dry-run",
        }
    }
}

/// The sidecar's content. Never holds a secret: the identity is an accessID, an OAuth client
/// id or a token's fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReportMeta {
    /// Format version: 1.
    pub(crate) schema: u32,
    /// `ds100-offboard`.
    pub(crate) tool: String,
    /// The version that created the report.
    pub(crate) tool_version: String,
    pub(crate) mode: ReportMode,
    /// The API root URL the job sends to (`https://…/AdminInterface/restapi/v1`); none for
    /// `validate`.
    pub(crate) tenant: Option<String>,
    /// Who sent: `accessID <id>` (key file), `OAuth client <id>` (OAuth API client) or
    /// `token sha256:<first 12 hex digits>` (ready token); none for `validate`.
    pub(crate) identity: Option<String>,
    /// The input file, as an absolute path when it can be resolved.
    pub(crate) input: String,
    /// When the job started, RFC 3339 UTC. A resume keeps the original.
    pub(crate) started_at: String,
    /// The SHA-256 of the input as the job's first plan read it (lowercase hex).
    #[serde(default)]
    pub(crate) input_sha256: Option<String>,
    /// Data rows in that input: a report with fewer rows has rows to account for.
    #[serde(default)]
    pub(crate) input_rows: Option<u64>,
    /// One record per command that wrote to the report, oldest first.
    #[serde(default)]
    pub(crate) invocations: Vec<Invocation>,
    /// The input is one of the tool's reports: its rows keep that report's row numbers, so
    /// this report's row numbers have gaps (docs/design.md#a-report-as-input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) input_report: Option<InputReport>,
}

/// How a job read one of the tool's reports as its input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InputReport {
    /// `--only-status`, as given (`None`: every row's latest line).
    #[serde(default)]
    pub(crate) only_status: Option<Vec<String>>,
}

/// What one command (`run`, a resume, `validate`) did to the report, recorded when it ended.
/// Every field but the first four may be missing in a hand-made or damaged record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Invocation {
    /// `run`, `run --dry-run`, `validate`; `--resume` added when it continued the job.
    pub(crate) command: String,
    pub(crate) tool_version: String,
    /// When the command started (before its plan and confirmation), RFC 3339 UTC.
    pub(crate) started_at: String,
    /// When it ended, RFC 3339 UTC.
    pub(crate) finished_at: String,
    /// Who sent, as in `ReportMeta::identity` (a resume may use another identity).
    #[serde(default)]
    pub(crate) identity: Option<String>,
    /// The SHA-256 of the input this command read.
    #[serde(default)]
    pub(crate) input_sha256: Option<String>,
    /// Time spent sending (from the go-ahead to the last row), in seconds.
    #[serde(default)]
    pub(crate) elapsed_seconds: Option<f64>,
    /// Rows this command sent requests for.
    #[serde(default)]
    pub(crate) rows_sent: Option<u64>,
    /// Rows whose final status came from earlier commands (a resume).
    #[serde(default)]
    pub(crate) rows_carried_over: Option<u64>,
    #[serde(default)]
    pub(crate) requests_sent: Option<u64>,
    #[serde(default)]
    pub(crate) throttled_429: Option<u64>,
    /// `--rate`, in requests per second.
    #[serde(default)]
    pub(crate) rate_per_second: Option<f64>,
    /// The rate the adaptive control ended at, in requests per second.
    #[serde(default)]
    pub(crate) final_rate_per_second: Option<f64>,
    /// Why it stopped early (safety stop, interrupt), if it did.
    #[serde(default)]
    pub(crate) stopped: Option<String>,
    #[serde(default)]
    pub(crate) exit_code: Option<u8>,
    /// The report's SHA-256 (lowercase hex) as this command left it: a report read as input
    /// later must still be that file, not one edited or saved again by a spreadsheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) report_sha256: Option<String>,
}

/// `leavers.report.csv` → `leavers.report.meta.json`.
pub(crate) fn sidecar_path(report: &Path) -> PathBuf {
    report.with_extension("meta.json")
}

impl ReportMeta {
    pub(crate) fn new(
        mode: ReportMode,
        tenant: Option<String>,
        identity: Option<String>,
        input: &Path,
        started: SystemTime,
    ) -> ReportMeta {
        let input = input.canonicalize().unwrap_or_else(|_| input.to_path_buf());
        ReportMeta {
            schema: SCHEMA,
            tool: env!("CARGO_PKG_NAME").to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            mode,
            tenant,
            identity,
            input: input.to_string_lossy().into_owned(),
            started_at: humantime::format_rfc3339_seconds(started).to_string(),
            input_sha256: None,
            input_rows: None,
            invocations: Vec::new(),
            input_report: None,
        }
    }

    /// Records the input the job's plan read: its SHA-256 and its number of data rows.
    pub(crate) fn with_input(mut self, sha256: &str, rows: u64) -> ReportMeta {
        self.input_sha256 = Some(sha256.to_string());
        self.input_rows = Some(rows);
        self
    }

    /// Reads the sidecar of `report` for `report` and for recording an invocation: `Ok(None)`
    /// when there is none, `Err` (the reason) when it cannot be used. Unlike `read`, it gives
    /// no advice about resuming.
    pub(crate) fn read_if_present(report: &Path) -> Result<Option<ReportMeta>, String> {
        // A sidecar is a few kilobytes; one grown beyond this is not one of ours.
        const MAX_BYTES: u64 = 16 * 1024 * 1024;
        let path = sidecar_path(report);
        let text = match std::fs::File::open(&path) {
            Ok(f) => {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(f, MAX_BYTES + 1),
                    &mut text,
                )
                .map_err(|e| format!("{}: {e}", path.display()))?;
                if text.len() as u64 > MAX_BYTES {
                    return Err(format!("{} is larger than 16 MiB", path.display()));
                }
                text
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not valid JSON ({e})", path.display()))?;
        let schema = value.get("schema").and_then(serde_json::Value::as_u64);
        if schema != Some(u64::from(SCHEMA)) {
            return Err(format!(
                "{} has schema {}, this version reads schema {SCHEMA}",
                path.display(),
                schema.map_or("(none)".to_string(), |s| s.to_string())
            ));
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("{} is damaged ({e})", path.display()))
    }

    /// Reads the sidecar of `report` for `--resume`; a missing, unreadable or newer one is
    /// refused with the way forward.
    pub(crate) fn read(report: &Path) -> anyhow::Result<ReportMeta> {
        let path = sidecar_path(report);
        let start_anew = "start a new report instead with --report NEW.csv (or replace this \
                          one with --overwrite): rows already done then end `absent` after a \
                          lookup, nothing is deleted twice";
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "cannot resume into {}: its sidecar {} is missing. The sidecar records the \
                 tenant, mode and identity the report was made with, so a resume never \
                 continues a job against another tenant; without it that cannot be checked \
                 (a report written before sidecars existed, or the file was removed). If you \
                 still have it, put it back; else {start_anew}.",
                report.display(),
                path.display()
            ),
            Err(e) => bail!(
                "cannot resume into {}: its sidecar {} cannot be read ({e}); {start_anew}.",
                report.display(),
                path.display()
            ),
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "cannot resume into {}: its sidecar {} is not valid JSON ({e}); restore it, or \
                 {start_anew}.",
                report.display(),
                path.display()
            )
        })?;
        let schema = value.get("schema").and_then(serde_json::Value::as_u64);
        if schema != Some(u64::from(SCHEMA)) {
            bail!(
                "cannot resume into {}: its sidecar {} has schema {}, and this version of {} \
                 reads schema {SCHEMA}: resume with the version that wrote it, or {start_anew}.",
                report.display(),
                path.display(),
                schema.map_or("(none)".to_string(), |s| s.to_string()),
                env!("CARGO_PKG_NAME")
            );
        }
        serde_json::from_value(value).map_err(|e| {
            anyhow::anyhow!(
                "cannot resume into {}: its sidecar {} is damaged ({e}); restore it, or \
                 {start_anew}.",
                report.display(),
                path.display()
            )
        })
    }

    /// Writes the sidecar of `report`, replacing any earlier one whole.
    pub(crate) fn write(&self, report: &Path) -> anyhow::Result<()> {
        let path = sidecar_path(report);
        let mut json = serde_json::to_vec_pretty(self).context("encoding the report sidecar")?;
        json.push(b'\n');
        files::write_atomic(&path, &json)
            .with_context(|| format!("cannot write the report sidecar {}", path.display()))
    }

    /// Refuses to resume into this report with `mode` against `tenant`: another tenant or
    /// another mode is another job. (Another identity is only a warning: `identity_warning`.)
    pub(crate) fn check_resume(
        &self,
        report: &Path,
        mode: ReportMode,
        tenant: &str,
    ) -> anyhow::Result<()> {
        let recorded = self.tenant.as_deref().unwrap_or("(none)");
        if recorded != tenant {
            bail!(
                "refusing to resume: the report {} was made against another tenant: it records \
                 tenant {recorded}, this run is against tenant {tenant}. Its rows say nothing \
                 about this tenant (a rehearsal's report is no record of production). Start a \
                 new report for this tenant with --report NEW.csv. Nothing was sent.",
                report.display()
            );
        }
        if self.mode != mode {
            bail!(
                "refusing to resume: the report {} was made in another mode: it records mode {}, \
                 this run's mode is {}. Start a new report with --report NEW.csv (or drop \
                 --resume and pass --overwrite to replace it). Nothing was sent.",
                report.display(),
                self.mode.as_str(),
                mode.as_str()
            );
        }
        Ok(())
    }

    /// Refuses to resume a job that read a report as input with another selection of its
    /// rows (`now`: this run's, `None` when its input is not a report): the rows would not be
    /// the job's.
    pub(crate) fn check_resume_input(
        &self,
        report: &Path,
        now: Option<&InputReport>,
    ) -> anyhow::Result<()> {
        let describe = |r: Option<&InputReport>| match r {
            None => "a list of credentials".to_string(),
            Some(InputReport { only_status: None }) => {
                "a report of the tool, every row".to_string()
            }
            Some(InputReport {
                only_status: Some(only),
            }) => format!("a report of the tool, --only-status {}", only.join(",")),
        };
        if self.input_report.as_ref() != now {
            bail!(
                "refusing to resume: the report {} was made from {}, this run reads {}. The \
                 rows would not be the job's: resume with the same input and --only-status, or \
                 start a new report with --report NEW.csv. Nothing was sent.",
                report.display(),
                describe(self.input_report.as_ref()),
                describe(now)
            );
        }
        Ok(())
    }

    /// A warning when the report was made with another identity than `now`'s.
    pub(crate) fn identity_warning(&self, now: &str) -> Option<String> {
        let recorded = self.identity.as_deref().unwrap_or("(none)");
        (recorded != now).then(|| {
            format!(
                "resuming a report made with another identity: it records identity {recorded}, \
                 this run uses {now}. Going on; the report's rows do not say who sent which"
            )
        })
    }
}

/// Creates the report (refusing an existing one unless `overwrite`) and writes its sidecar. If
/// the sidecar cannot be written, the fresh report is removed again: a report that cannot be
/// resumed safely is not started.
pub(crate) fn create_report(
    report: &Path,
    overwrite: bool,
    meta: &ReportMeta,
) -> anyhow::Result<ReportWriter> {
    let writer = ReportWriter::create(report, overwrite)?;
    if let Err(e) = meta.write(report) {
        drop(writer);
        let _ = std::fs::remove_file(report);
        return Err(e.context("nothing was sent"));
    }
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: ReportMode, tenant: &str, identity: &str) -> ReportMeta {
        ReportMeta::new(
            mode,
            Some(tenant.to_string()),
            Some(identity.to_string()),
            Path::new("in.csv"),
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn the_format() {
        let m = meta(
            ReportMode::DryRun,
            "https://a/AdminInterface/restapi/v1",
            "accessID x",
        );
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["tool"], "ds100-offboard");
        assert_eq!(v["mode"], "dry-run");
        assert_eq!(v["started_at"], "1970-01-01T00:00:00Z");
        assert_eq!(
            sidecar_path(Path::new("/d/l.report.csv")),
            Path::new("/d/l.report.meta.json")
        );
    }

    #[test]
    fn resume_checks() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.csv");
        let m = meta(ReportMode::Delete, "https://a/x", "accessID alice");
        m.write(&report).unwrap();
        let back = ReportMeta::read(&report).unwrap();
        assert_eq!(back, m);
        assert!(
            back.check_resume(&report, ReportMode::Delete, "https://a/x")
                .is_ok()
        );
        let err = back
            .check_resume(&report, ReportMode::Delete, "https://b/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("https://a/x") && err.contains("https://b/x"),
            "{err}"
        );
        let err = back
            .check_resume(&report, ReportMode::DryRun, "https://a/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mode delete") && err.contains("dry-run"),
            "{err}"
        );
        assert!(back.identity_warning("accessID alice").is_none());
        let w = back.identity_warning("accessID bob").unwrap();
        assert!(w.contains("alice") && w.contains("bob"), "{w}");

        std::fs::remove_file(sidecar_path(&report)).unwrap();
        let err = ReportMeta::read(&report).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("--report"), "{err}");
    }
}
