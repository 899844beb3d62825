//! The summary JSON, schema 1: what `run --summary-json`, `validate --summary-json` and
//! `report --json` write for pipelines and auditors. docs/summary-schema.md documents every
//! field; `SummaryDoc` is that document, key for key, and a test pins it.
//!
//! The top level describes the whole job (all commands that wrote the report, the latest line
//! per row); `invocation` describes one command: the one that wrote this summary, or for
//! `report --json` the last one the sidecar recorded. A value nobody recorded is `null`, never
//! a guess.

use std::collections::BTreeMap;

use serde::Serialize;

/// The version of this document's shape. Fields are only ever added within a version.
pub(crate) const SCHEMA: u32 = 1;

/// Facts about the job that come from the report's sidecar (or, for a command that is
/// writing the report, from the command itself).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFacts {
    /// `delete`, `dry-run` or `validate`.
    pub mode: Option<String>,
    pub tenant: Option<String>,
    /// `accessID <id>`, `OAuth client <id>` or `token sha256:<12 hex digits>`; never a secret.
    pub identity: Option<String>,
    /// The input file, absolute when known.
    pub input: Option<String>,
    pub input_sha256: Option<String>,
    /// RFC 3339 UTC.
    pub started_at: Option<String>,
    /// RFC 3339 UTC.
    pub finished_at: Option<String>,
}

/// One command's own figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InvocationDoc {
    /// The command as recorded: `run`, `run --dry-run` or `validate`.
    pub command: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Time spent sending, in seconds.
    pub elapsed_seconds: Option<f64>,
    /// Rows this command sent requests for.
    pub rows_sent: Option<u64>,
    /// Rows whose final status came from earlier commands (`--resume`).
    pub rows_carried_over: Option<u64>,
    pub requests_sent: Option<u64>,
    pub throttled_429: Option<u64>,
    /// `--rate`, requests per second.
    pub rate_per_second: Option<f64>,
    /// The rate the run ended at, requests per second.
    pub final_rate_per_second: Option<f64>,
}

/// The summary JSON document, schema 1. Field order is the order written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryDoc {
    pub schema: u32,
    /// `ds100-offboard`.
    pub tool: &'static str,
    /// The version that wrote this summary.
    pub tool_version: &'static str,
    /// What wrote it: `run`, `run --dry-run`, `validate` or `report`.
    pub command: String,
    pub mode: Option<String>,
    pub tenant: Option<String>,
    pub identity: Option<String>,
    pub input: Option<String>,
    pub input_sha256: Option<String>,
    pub report: String,
    /// When the job started (its first command), RFC 3339 UTC.
    pub started_at: Option<String>,
    /// When its last command ended (or its last row, as the report shows), RFC 3339 UTC.
    pub finished_at: Option<String>,
    /// Input rows of the job: those with a line in the report plus `rows_missing`.
    pub rows: u64,
    /// Rows per latest status, every status listed (zeros included).
    pub statuses: BTreeMap<&'static str, u64>,
    /// Rows whose latest status counts as ok.
    pub ok: u64,
    /// Rows whose latest status needs attention.
    pub failures: u64,
    /// Rows of the input with no line in the report (a run killed before it wrote them).
    pub rows_missing: u64,
    /// Why the (last) command stopped early, if it did.
    pub stopped: Option<String>,
    /// The command line that continues the job, when a run printed one.
    pub resume_command: Option<String>,
    /// The exit code of the command that wrote this summary.
    pub exit_code: u8,
    pub invocation: InvocationDoc,
}

impl SummaryDoc {
    /// The JSON text, pretty-printed, without a final newline.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
    }
}

/// `v` to three decimals: a rate of 5.729750309009331/s says no more than 5.73/s.
/// Whether `path` is a regular file holding a summary this tool wrote about `report`: what a
/// `--resume` may replace with the whole job's summary (the resume command the tool prints
/// repeats `--summary-json`). Anything else — another file, a summary of another report, a
/// symlink — is not.
pub(crate) fn is_summary_of(path: &std::path::Path, report: &std::path::Path) -> bool {
    /// A summary is a few KiB; anything much larger is something else.
    const MAX_SUMMARY: u64 = 1 << 20;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() > MAX_SUMMARY {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    let Ok(report) = report.canonicalize() else {
        return false;
    };
    doc["schema"] == SCHEMA
        && doc["tool"] == env!("CARGO_PKG_NAME")
        && doc["report"].as_str() == Some(report.to_string_lossy().as_ref())
}

pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// RFC 3339 UTC with seconds, as the sidecar writes times.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_values_are_null_not_missing() {
        let doc = SummaryDoc {
            schema: SCHEMA,
            tool: "ds100-offboard",
            tool_version: "0.1.0",
            command: "report".into(),
            mode: None,
            tenant: None,
            identity: None,
            input: None,
            input_sha256: None,
            report: "r.csv".into(),
            started_at: None,
            finished_at: None,
            rows: 0,
            statuses: BTreeMap::new(),
            ok: 0,
            failures: 0,
            rows_missing: 0,
            stopped: None,
            resume_command: None,
            exit_code: 0,
            invocation: InvocationDoc::default(),
        };
        let v: serde_json::Value = serde_json::from_slice(&doc.to_json().unwrap()).unwrap();
        assert!(v["tenant"].is_null());
        assert!(v.as_object().unwrap().contains_key("tenant"));
        assert!(v["invocation"]["requests_sent"].is_null());
        assert!(
            v["invocation"]
                .as_object()
                .unwrap()
                .contains_key("requests_sent")
        );
    }
}
