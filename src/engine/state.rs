//! What a run's workers share: the mode, the client, tokens, pacer and retry policy, the
//! request counters, and the stop: an interrupt, or the safety stop after too many
//! consecutive failed rows (docs/design.md#pace-and-retries).

use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

use super::counters::Counters;
use super::pacer::Pacer;
use super::people::People;
use super::retry::RetryPolicy;
use crate::api::auth::TokenSource;
use crate::api::client::ApiClient;
use crate::api::patch::TokenState;
use crate::input::{DeviceSerials, InputRow};
use crate::report::row::ReportRow;
use crate::report::status::Status;

/// What a run does with each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Delete. With `verify`, look every row up first and delete only an exact match.
    Delete { verify: bool },
    /// Read-only audit: look up and classify, never write.
    DryRun,
    /// `disable` / `enable`: look every row up, then PATCH its credential `to` that state and
    /// check the answer names it (docs/design.md#disable-and-enable). With `dry_run`, look up
    /// and classify only.
    Patch { to: TokenState, dry_run: bool },
}

impl Mode {
    /// Whether the run only reads (no DELETE, no PATCH; no confirmation).
    pub(crate) fn is_dry_run(self) -> bool {
        matches!(self, Mode::DryRun | Mode::Patch { dry_run: true, .. })
    }
}

/// Why dispatching stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    SafetyStop {
        consecutive: u64,
    },
    Interrupted,
    /// A PATCH answer named another credential than the row's: the tenant changed something
    /// the input does not name (docs/design.md#disable-and-enable).
    WrongCredential {
        row: u64,
    },
    /// No bearer token could be had (an OAuth issuer refusing or unreachable, after its
    /// retries): nothing more can be sent.
    NoToken {
        why: String,
    },
}

impl StopReason {
    fn skipped_note(&self) -> String {
        match self {
            StopReason::SafetyStop { consecutive } => {
                format!("not attempted: safety stop after {consecutive} consecutive failed rows")
            }
            StopReason::Interrupted => "not attempted: the run was interrupted".to_string(),
            StopReason::WrongCredential { row } => format!(
                "not attempted: safety stop after row {row}, whose change the tenant answered \
                 naming another credential"
            ),
            StopReason::NoToken { .. } => {
                "not attempted: no access token could be fetched (the run stopped)".to_string()
            }
        }
    }
}

/// What every worker shares.
pub(crate) struct Shared {
    pub(crate) client: ApiClient,
    pub(crate) tokens: TokenSource,
    pub(crate) pacer: Pacer,
    pub(crate) retry: RetryPolicy,
    pub(crate) mode: Mode,
    /// Cancelled when no new row may start (safety stop, interrupt).
    pub(crate) stop: CancellationToken,
    /// Cancelled when rows in flight must not start another attempt (interrupt).
    pub(crate) abort: CancellationToken,
    pub(crate) stop_reason: OnceLock<StopReason>,
    pub(crate) counters: Counters,
    /// Consecutive rows ending failed/unauthorized before the safety stop; 0 = never.
    pub(crate) stop_after: u64,
    /// The current run of consecutive failed rows, in completion order.
    pub(crate) failure_streak: std::sync::Mutex<u64>,
    /// The lengths of the input's all-digit device serials: which serials may have lost
    /// their leading zeros (looked up zero-padded before a row is called absent).
    pub(crate) device_serials: DeviceSerials,
    /// The users the input's email addresses name, looked up once per address.
    pub(crate) people: People,
}

impl Shared {
    /// Stops dispatching; the first reason given is kept.
    pub(crate) fn stop(&self, reason: StopReason) {
        let _ = self.stop_reason.set(reason);
        self.stop.cancel();
    }

    /// Counts a finished row towards the safety stop. Called by the worker as soon as the row
    /// ends, so that with one worker not a single further row starts after the stop.
    pub(crate) fn record(&self, row: &ReportRow) {
        if row.requests() == 0 || row.status == Status::Skipped {
            return; // rows that never reached the server say nothing about it
        }
        let mut streak = self
            .failure_streak
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if matches!(row.status, Status::Failed | Status::Unauthorized) {
            *streak += 1;
            if self.stop_after > 0 && *streak >= self.stop_after && !self.stop.is_cancelled() {
                tracing::error!(
                    "safety stop: {} consecutive rows failed; no new rows will be sent",
                    *streak
                );
                self.stop(StopReason::SafetyStop {
                    consecutive: *streak,
                });
            }
        } else {
            *streak = 0;
        }
    }

    /// The report row of a row that was never attempted because the run stopped.
    pub(crate) fn skipped(&self, row: InputRow) -> ReportRow {
        ReportRow::unsent(row, Status::Skipped, self.skipped_note())
    }

    /// Why rows are not started any more, for their report rows.
    pub(crate) fn skipped_note(&self) -> String {
        self.stop_reason
            .get()
            .map(StopReason::skipped_note)
            .unwrap_or_else(|| "not attempted: the run stopped early".to_string())
    }
}
