//! The worker loop, written once: take a row, spend paced and retried requests on it (lookup,
//! delete, confirmation), turn what happened into one report row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::matching::{self, Held, Record, Verdict, Wanted};
use super::pacer::Pacer;
use super::retry::{RetryPolicy, StatusClass, classify_status};
use crate::api::answer::{self, DeleteSuccess};
use crate::api::auth::TokenSource;
use crate::api::client::ApiClient;
use crate::api::exchange::Answer;
use crate::api::types::{Credential, LookupRecord};
use crate::input::{DeviceSerials, InputRow, Padding};
use crate::report::row::{ReportRow, Spent};
use crate::report::status::Status;

/// What a run does with each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Delete. With `verify`, look every row up first and delete only an exact match.
    Delete { verify: bool },
    /// Read-only audit: look up and classify, never write.
    DryRun,
}

/// Why dispatching stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    SafetyStop { consecutive: u64 },
    Interrupted,
}

impl StopReason {
    fn skipped_note(&self) -> String {
        match self {
            StopReason::SafetyStop { consecutive } => {
                format!("not attempted: safety stop after {consecutive} consecutive failed rows")
            }
            StopReason::Interrupted => "not attempted: the run was interrupted".to_string(),
        }
    }
}

/// Request counters shared by all workers, read by the summary and the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    /// Rows that got at least one request.
    pub rows_sent: AtomicU64,
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
}

/// What every worker shares.
pub struct Shared {
    pub client: ApiClient,
    pub tokens: TokenSource,
    pub pacer: Pacer,
    pub retry: RetryPolicy,
    pub mode: Mode,
    /// Cancelled when no new row may start (safety stop, interrupt).
    pub stop: CancellationToken,
    /// Cancelled when rows in flight must not start another attempt (interrupt).
    pub abort: CancellationToken,
    pub stop_reason: OnceLock<StopReason>,
    pub counters: Counters,
    /// Consecutive rows ending failed/unauthorized before the safety stop; 0 = never.
    pub stop_after: u64,
    /// The current run of consecutive failed rows, in completion order.
    pub failure_streak: std::sync::Mutex<u64>,
    /// The lengths of the input's all-digit device serials: which serials may have lost
    /// their leading zeros (looked up zero-padded before a row is called absent).
    pub device_serials: DeviceSerials,
}

impl Shared {
    /// Stops dispatching; the first reason given is kept.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stop_reason.set(reason);
        self.stop.cancel();
    }

    /// Counts a finished row towards the safety stop. Called by the worker as soon as the row
    /// ends, so that with one worker not a single further row starts after the stop.
    fn record(&self, row: &ReportRow) {
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
    pub fn skipped(&self, row: InputRow) -> ReportRow {
        ReportRow::unsent(row, Status::Skipped, self.skipped_note())
    }

    fn skipped_note(&self) -> String {
        self.stop_reason
            .get()
            .map(StopReason::skipped_note)
            .unwrap_or_else(|| "not attempted: the run stopped early".to_string())
    }
}

/// One worker: pulls rows until the channel closes, sends one report row per row.
pub async fn work(
    shared: Arc<Shared>,
    jobs_rx: Arc<Mutex<mpsc::Receiver<InputRow>>>,
    rows_tx: mpsc::Sender<ReportRow>,
) {
    loop {
        // The lock is held only while waiting for the next row; processing runs unlocked.
        let next = jobs_rx.lock().await.recv().await;
        let Some(row) = next else { return };
        let report = if shared.stop.is_cancelled() {
            shared.skipped(row)
        } else {
            let report = process(&shared, row).await;
            tracing::debug!(
                row = report.row,
                status = %report.status,
                attempts = report.attempts,
                http = ?report.http_status,
                lookups = report.lookups,
                "row finished"
            );
            shared.record(&report);
            report
        };
        if rows_tx.send(report).await.is_err() {
            return; // the writer is gone; the run is being torn down
        }
    }
}

/// What the lookup after a DELETE's 404 says.
enum Confirmed {
    Ended(Ended),
    /// The credential is there, spelled differently (the userId's case): send the DELETE again
    /// with these exact values.
    Respelled(Held),
}

/// How one row ended, before it becomes a report row.
struct Ended {
    status: Status,
    error: String,
    /// Resolved values (from a lookup), when they differ from the input.
    resolved: Option<Held>,
}

impl Ended {
    fn new(status: Status, error: impl Into<String>) -> Ended {
        Ended {
            status,
            error: error.into(),
            resolved: None,
        }
    }
}

async fn process(shared: &Shared, row: InputRow) -> ReportRow {
    let mut run = RowRun {
        shared,
        spent: Spent::default(),
        first_sent: None,
        unanswered: false,
    };
    let ended = match shared.mode {
        Mode::DryRun => run.audit(&row).await,
        Mode::Delete { verify } if verify || row.needs_lookup() => {
            run.lookup_then_delete(&row).await
        }
        Mode::Delete { .. } => {
            let cred = Credential {
                token_serial_number: row.token.clone(),
                device_serial_number: row.device.clone(),
                user_id: row.user.clone(),
            };
            run.delete(&cred).await
        }
    };
    let mut spent = run.spent;
    spent.elapsed_ms = run.first_sent.map(|t| t.elapsed().as_millis() as u64);
    if spent.requests() > 0 {
        shared.counters.rows_sent.fetch_add(1, Ordering::Relaxed);
    }
    // The report keeps the input's values as written; a lookup only fills what it left empty.
    let mut row = row;
    let mut resolved = Vec::new();
    if let Some(held) = ended.resolved {
        if row.token.is_empty() && !held.token.is_empty() {
            row.token = held.token;
            resolved.push("tokenSerialNumber");
        }
        if row.user.is_empty() && !held.user.is_empty() {
            row.user = held.user;
            resolved.push("userId");
        }
    }
    let mut report = ReportRow::finished(row, ended.status, ended.error, spent);
    report.resolved = resolved.join(";");
    report
}

/// A request the engine can send.
#[derive(Clone, Copy)]
enum Op<'a> {
    Delete(&'a Credential),
    Lookup(&'a str),
}

/// A request that got no usable final answer.
enum CallError {
    /// Retries exhausted, or an error that retrying cannot fix.
    GaveUp(String),
    /// Interrupted between attempts.
    Aborted(String),
}

/// Why a lookup gave no list of credentials.
enum LookupError {
    Unauthorized(String),
    Failed(String),
    Aborted(String),
}

/// Everything spent on one row so far.
struct RowRun<'a> {
    shared: &'a Shared,
    /// Requests sent so far and their last answers.
    spent: Spent,
    first_sent: Option<Instant>,
    /// A DELETE attempt got no answer: the server may have deleted before the connection broke.
    unanswered: bool,
}

impl RowRun<'_> {
    /// Sends one request until it has a final answer: paced, retried on 429/5xx/transport
    /// errors, with one fresh token after a 403 when the token source can make one.
    async fn call(&mut self, op: Op<'_>) -> Result<Answer, CallError> {
        let sh = self.shared;
        let mut bearer = sh
            .tokens
            .current()
            .await
            .map_err(|e| CallError::GaveUp(format!("no bearer token: {e:#}")))?;
        let mut renewed = false;
        let mut tries = 0u32;
        loop {
            tokio::select! {
                biased;
                _ = sh.abort.cancelled() => return Err(self.aborted()),
                // A row that has sent nothing yet is not in flight: after a stop it is not
                // started (the other workers' rows wait here for their first slot).
                _ = sh.stop.cancelled(), if self.spent.requests() == 0 => {
                    return Err(CallError::Aborted(sh.skipped_note()));
                }
                _ = sh.pacer.acquire() => {}
            }
            if !renewed {
                // After the pacer, per attempt: a wait or a row retried for minutes must not
                // outlive a minted token.
                bearer = sh
                    .tokens
                    .current()
                    .await
                    .map_err(|e| CallError::GaveUp(format!("no bearer token: {e:#}")))?;
            }
            tries += 1;
            match op {
                Op::Delete(_) => self.spent.changes += 1,
                Op::Lookup(_) => self.spent.lookups += 1,
            }
            self.first_sent.get_or_insert_with(Instant::now);
            let sent_at = Instant::now();
            sh.counters.requests.fetch_add(1, Ordering::Relaxed);
            let sent = match op {
                Op::Delete(cred) => sh.client.delete_otp(cred, &bearer).await,
                Op::Lookup(device) => sh.client.lookup(device, &bearer).await,
            };
            let (wait, why) = match sent {
                Ok(answer) => {
                    sh.pacer.on_answer(sent_at, answer.status == 429);
                    match op {
                        Op::Delete(_) => self.spent.change_status = Some(answer.status),
                        Op::Lookup(_) => self.spent.lookup_status = Some(answer.status),
                    }
                    match classify_status(answer.status) {
                        StatusClass::Throttled => {
                            sh.counters.throttled.fetch_add(1, Ordering::Relaxed);
                            // Everyone holds off; this worker then waits in acquire() too.
                            sh.pacer.hold_off(sh.retry.wait(tries, answer.retry_after));
                            (None, "HTTP 429 Too Many Requests".to_string())
                        }
                        StatusClass::Transient => (
                            Some(sh.retry.wait(tries, answer.retry_after)),
                            format!("HTTP {} {}", answer.status, answer.body_excerpt()),
                        ),
                        StatusClass::Forbidden if !renewed => {
                            match sh.tokens.renew_after_forbidden(&bearer).await {
                                Some(fresh) => {
                                    tracing::debug!("403: retrying once with a fresh token");
                                    bearer = fresh;
                                    renewed = true;
                                    continue;
                                }
                                None => return Ok(answer),
                            }
                        }
                        _ => return Ok(answer),
                    }
                }
                Err(err) if err.is_retryable() => {
                    // Not a throttle: for the measured admitted rate it counts like any
                    // answer other than 429, or a flaky network would drain the rate.
                    sh.pacer.on_answer(sent_at, false);
                    if matches!(op, Op::Delete(_)) {
                        self.unanswered = true;
                    }
                    (Some(sh.retry.backoff(tries)), err.to_string())
                }
                Err(err) => return Err(CallError::GaveUp(err.to_string())),
            };
            if tries >= sh.retry.max_attempts {
                let what = match op {
                    Op::Delete(_) => "DELETE",
                    Op::Lookup(_) => "lookup",
                };
                return Err(CallError::GaveUp(format!(
                    "retries exhausted: {what} failed {tries} times; last: {why}"
                )));
            }
            tracing::debug!(attempt = tries, reason = %why, "retrying");
            if let Some(wait) = wait {
                tokio::select! {
                    biased;
                    _ = sh.abort.cancelled() => return Err(self.aborted()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    fn aborted(&self) -> CallError {
        CallError::Aborted(format!(
            "interrupted after {} request(s) without a final answer; it will be retried on resume",
            self.spent.requests()
        ))
    }

    /// Deletes one fully known credential and explains a 404 with a lookup.
    async fn delete(&mut self, cred: &Credential) -> Ended {
        let mut respelled: Option<Credential> = None;
        loop {
            let sent = respelled.as_ref().unwrap_or(cred);
            let answer = match self.call(Op::Delete(sent)).await {
                Ok(a) => a,
                Err(CallError::GaveUp(why)) => return Ended::new(Status::Failed, why),
                Err(CallError::Aborted(why)) => return Ended::new(Status::Skipped, why),
            };
            let mut ended = match classify_status(answer.status) {
                // Only an answer shaped like the API's is a deletion: a sign-in page, a
                // portal or a body reporting an error deleted nothing.
                StatusClass::Success => match answer::delete_success(&answer) {
                    DeleteSuccess::Deleted { body } => {
                        Ended::new(Status::Deleted, body.unwrap_or_default())
                    }
                    DeleteSuccess::NotDeleted(why) => Ended::new(Status::Failed, why),
                },
                // A gateway's or proxy's 404 says nothing about the credential.
                StatusClass::NotFound if let Some(what) = answer::foreign_404(&answer) => {
                    Ended::new(Status::Failed, foreign_404_error("DELETE", &what))
                }
                StatusClass::NotFound => match self.confirm_404(sent).await {
                    Confirmed::Ended(ended) => ended,
                    // The tenant spells the user id in another case and may compare it
                    // exactly: once more, with its own spelling.
                    Confirmed::Respelled(held) if respelled.is_none() => {
                        tracing::debug!("404: the tenant spells the userId differently; retrying");
                        respelled = Some(Credential {
                            token_serial_number: held.token,
                            device_serial_number: cred.device_serial_number.clone(),
                            user_id: held.user,
                        });
                        continue;
                    }
                    Confirmed::Respelled(_) => Ended::new(
                        Status::NotFound,
                        "DELETE answered 404 but a lookup still lists this credential",
                    ),
                },
                StatusClass::Forbidden => {
                    Ended::new(Status::Unauthorized, forbidden_note(&answer, "DELETE"))
                }
                _ => Ended::new(
                    Status::Failed,
                    format!(
                        "DELETE answered HTTP {}: {}",
                        answer.status,
                        answer.body_excerpt()
                    ),
                ),
            };
            if let Some(r) = respelled {
                let how = format!(
                    "the tenant spells this credential {}/{}; the DELETE was sent again with its spelling",
                    r.token_serial_number, r.user_id
                );
                ended.error = if ended.error.is_empty() {
                    how
                } else {
                    format!("{}; {how}", ended.error)
                };
            }
            return ended;
        }
    }

    /// DELETE answered 404: either the credential is gone (the goal) or the row names it
    /// wrongly (it still works). Only a lookup tells which.
    async fn confirm_404(&mut self, cred: &Credential) -> Confirmed {
        let held = match self.lookup(&cred.device_serial_number).await {
            Ok(held) => held,
            Err(LookupError::Aborted(why)) => {
                return Confirmed::Ended(Ended::new(Status::Skipped, why));
            }
            Err(LookupError::Unauthorized(why) | LookupError::Failed(why)) => {
                return Confirmed::Ended(Ended::new(
                    Status::NotFound,
                    format!("DELETE answered 404 and the lookup to explain it failed ({why})"),
                ));
            }
        };
        if held.is_empty()
            && let Some(mut ended) = self.lost_zeros(&cred.device_serial_number).await
        {
            if ended.status != Status::Skipped {
                ended.error = format!("DELETE answered 404: {}", ended.error);
            }
            return Confirmed::Ended(ended);
        }
        let want = Wanted {
            token: &cred.token_serial_number,
            device: &cred.device_serial_number,
            user: &cred.user_id,
        };
        Confirmed::Ended(match matching::classify(want, &held) {
            Verdict::Absent(why) => {
                let note = if self.unanswered {
                    "; an earlier DELETE attempt got no answer and most likely removed it"
                } else {
                    ""
                };
                Ended::new(Status::Absent, format!("DELETE answered 404: {why}{note}"))
            }
            Verdict::Mismatch(why) => {
                Ended::new(Status::Mismatch, format!("DELETE answered 404: {why}"))
            }
            Verdict::Match(h) if h.user != cred.user_id || h.token != cred.token_serial_number => {
                return Confirmed::Respelled(h);
            }
            Verdict::Match(_) => Ended::new(
                Status::NotFound,
                "DELETE answered 404 but a lookup still lists this credential",
            ),
            Verdict::Ambiguous(why) => Ended::new(
                Status::NotFound,
                format!("DELETE answered 404 and the lookup cannot tell why: {why}"),
            ),
        })
    }

    /// Looks the device up first; deletes only the one credential that matches the row.
    async fn lookup_then_delete(&mut self, row: &InputRow) -> Ended {
        let held = match self.checked_lookup(row).await {
            Ok(h) => h,
            Err(ended) => return ended,
        };
        let cred = Credential {
            token_serial_number: held.token.clone(),
            device_serial_number: row.device.clone(),
            user_id: held.user.clone(),
        };
        let mut ended = self.delete(&cred).await;
        ended.resolved = Some(held);
        ended
    }

    /// Dry run: what a real run would do with this row.
    async fn audit(&mut self, row: &InputRow) -> Ended {
        match self.checked_lookup(row).await {
            Ok(held) => Ended {
                status: Status::WouldDelete,
                error: String::new(),
                resolved: Some(held),
            },
            Err(ended) => ended,
        }
    }

    /// A lookup of the row's device, classified: the matching credential, or how the row ends.
    async fn checked_lookup(&mut self, row: &InputRow) -> Result<Held, Ended> {
        let held = match self.lookup(&row.device).await {
            Ok(h) => h,
            Err(LookupError::Unauthorized(why)) => {
                return Err(Ended::new(Status::Unauthorized, why));
            }
            Err(LookupError::Failed(why)) => return Err(Ended::new(Status::Failed, why)),
            Err(LookupError::Aborted(why)) => return Err(Ended::new(Status::Skipped, why)),
        };
        if held.is_empty()
            && let Some(ended) = self.lost_zeros(&row.device).await
        {
            return Err(ended);
        }
        let want = Wanted {
            token: &row.token,
            device: &row.device,
            user: &row.user,
        };
        match matching::classify(want, &held) {
            Verdict::Match(h) => Ok(h),
            Verdict::Absent(why) => Err(Ended::new(Status::Absent, why)),
            Verdict::Mismatch(why) => Err(Ended::new(Status::Mismatch, why)),
            Verdict::Ambiguous(why) => Err(Ended::new(Status::Ambiguous, why)),
        }
    }

    /// The lookup of `device` found nothing: it may have lost its leading zeros. Its
    /// zero-padded forms are looked up (at most two more requests, paced like every other; see
    /// `DeviceSerials::padding`): one that holds a credential makes the row a mismatch. When
    /// the input itself suggests damage (all digits, shorter than others of the file) and no
    /// form holds one, or one could not be looked up, the row is `not_found`, never `absent`.
    /// `None`: the row may be absent.
    async fn lost_zeros(&mut self, device: &str) -> Option<Ended> {
        let Padding { forms, suspicious } = self.shared.device_serials.padding(device);
        if !suspicious && self.unanswered {
            // The speculative lookup is for a 404 nothing explains; a DELETE attempt that got
            // no answer most likely removed the credential itself.
            return None;
        }
        let mut failures = Vec::new();
        for padded in &forms {
            match self.lookup(padded).await {
                Ok(held) if !held.is_empty() => {
                    let why = matching::lost_device_zeros(device, padded, &held);
                    return Some(Ended::new(Status::Mismatch, why));
                }
                Ok(_) => {}
                Err(LookupError::Aborted(why)) => return Some(Ended::new(Status::Skipped, why)),
                Err(LookupError::Unauthorized(why) | LookupError::Failed(why)) => {
                    failures.push(why);
                }
            }
        }
        if suspicious {
            let why = matching::short_device_unknown(device, &forms, &failures);
            return Some(Ended::new(Status::NotFound, why));
        }
        // Nothing in the file suggests damage and the device lookup itself answered: the row
        // is absent even when the speculative lookup could not be made.
        None
    }

    /// Every credential the device holds (404 = none).
    async fn lookup(&mut self, device: &str) -> Result<Vec<Record>, LookupError> {
        let answer = match self.call(Op::Lookup(device)).await {
            Ok(a) => a,
            Err(CallError::GaveUp(why)) => {
                return Err(LookupError::Failed(format!("lookup: {why}")));
            }
            Err(CallError::Aborted(why)) => return Err(LookupError::Aborted(why)),
        };
        match classify_status(answer.status) {
            StatusClass::Success if let Some(why) = answer::foreign_lookup_success(&answer) => {
                Err(LookupError::Failed(why))
            }
            // "The device holds nothing" only when the API itself says so.
            StatusClass::NotFound if let Some(what) = answer::foreign_404(&answer) => {
                Err(LookupError::Failed(foreign_404_error("lookup", &what)))
            }
            StatusClass::Success => parse_lookup(&answer.body)
                .map(|records| matching::held(&records))
                .map_err(|why| {
                    LookupError::Failed(format!("lookup answered {}: {why}", answer.status))
                }),
            StatusClass::NotFound => Ok(Vec::new()),
            StatusClass::Forbidden => {
                Err(LookupError::Unauthorized(forbidden_note(&answer, "lookup")))
            }
            _ => Err(LookupError::Failed(format!(
                "lookup answered HTTP {}: {}",
                answer.status,
                answer.body_excerpt()
            ))),
        }
    }
}

/// A 404 that something other than the API sent: the row fails, it is never `absent`.
fn foreign_404_error(what: &str, answered: &str) -> String {
    format!(
        "{what} answered 404 with {answered}; nothing says the credential is gone: {}",
        answer::NOT_THE_API_HINT
    )
}

/// One read-only lookup of `device` through the same pacer, retries and token renewal as
/// every row's requests: the check of the credentials before the plan. The answer as it came
/// and the requests it took, or why none came.
pub(crate) async fn probe_lookup(shared: &Shared, device: &str) -> Result<(Answer, u32), String> {
    let mut run = RowRun {
        shared,
        spent: Spent::default(),
        first_sent: None,
        unanswered: false,
    };
    match run.call(Op::Lookup(device)).await {
        Ok(answer) => Ok((answer, run.spent.lookups)),
        Err(CallError::GaveUp(why) | CallError::Aborted(why)) => Err(why),
    }
}

fn forbidden_note(answer: &Answer, what: &str) -> String {
    let body = answer.body_excerpt();
    let body = if body.is_empty() {
        String::new()
    } else {
        format!(" ({body})")
    };
    format!(
        "{what} answered {}{body}: the token was refused or its key lacks the permission \
         (Help Desk or Super Administrator role)",
        answer.status
    )
}

/// Lenient parse of a lookup answer: an array of records (a lone object is taken as one).
pub(crate) fn parse_lookup(body: &[u8]) -> Result<Vec<LookupRecord>, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "body is not JSON ({e}): {}",
            crate::api::exchange::excerpt(&String::from_utf8_lossy(body), 80)
        )
    })?;
    // Anything but an array is a guess, and a wrong guess reads "no credential" where there
    // is one: only unambiguous shapes are taken.
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) => {
            const RECORD_KEYS: [&str; 4] =
                ["tokenSerialNumber", "userId", "deviceSerialNumber", "id"];
            if RECORD_KEYS.iter().any(|k| map.contains_key(*k)) {
                vec![serde_json::Value::Object(map)] // one record, not wrapped in an array
            } else {
                // An envelope such as {"data": [...]}: exactly one array, of objects.
                let mut arrays = map
                    .into_iter()
                    .filter_map(|(_, v)| match v {
                        serde_json::Value::Array(items) => Some(items),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                match arrays.pop() {
                    Some(items) if arrays.is_empty() && items.iter().all(|i| i.is_object()) => {
                        items
                    }
                    _ => {
                        return Err(
                            "expected a JSON array of records, got an object that does not \
                             hold exactly one array of records"
                                .to_string(),
                        );
                    }
                }
            }
        }
        other => return Err(format!("expected a JSON array of records, got {other}")),
    };
    // A record whose fields have unexpected types is kept as far as it parses: a non-string
    // field becomes None rather than failing the whole row.
    Ok(items.into_iter().map(lenient_record).collect())
}

fn lenient_record(item: serde_json::Value) -> LookupRecord {
    let serde_json::Value::Object(map) = item else {
        return LookupRecord::default();
    };
    let get = |k: &str| match map.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    LookupRecord {
        id: get("id"),
        name: get("name"),
        user_id: get("userId"),
        device_type: get("deviceType"),
        registered_date: get("registeredDate"),
        token_serial_number: get("tokenSerialNumber"),
        updated_at: get("updatedAt"),
        token_state: get("tokenState"),
        expiry_date: get("expiryDate"),
        token_status: get("tokenStatus"),
        token_status_reason: get("tokenStatusReason"),
        assigned_at: get("assignedAt"),
        assigned_by: get("assignedBy"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_bodies_are_parsed_leniently() {
        let body = br#"[{"tokenSerialNumber":"014010008035","userId":"26c1e3d6-b31c-803e-cf7f-bdbe7687a72b",
            "expiryDate":null,"registeredDate":"yesterday-ish","extra":{"x":1}},
            {"tokenSerialNumber":14010008036,"userId":null}]"#;
        let recs = parse_lookup(body).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].registered_date.as_deref(), Some("yesterday-ish"));
        assert_eq!(recs[1].token_serial_number.as_deref(), Some("14010008036"));
        assert_eq!(recs[1].user_id, None);
        assert_eq!(
            parse_lookup(b"{\"tokenSerialNumber\":\"1\"}")
                .unwrap()
                .len(),
            1
        );
        // `null` is not "no credential": that is a 404, or an empty array.
        assert!(parse_lookup(b"null").is_err());
        assert_eq!(parse_lookup(b"[]").unwrap().len(), 0);
        // Envelopes with more than one array cannot be read without guessing.
        assert!(parse_lookup(br#"{"errors":[],"records":[{"tokenSerialNumber":"1"}]}"#).is_err());
        assert!(parse_lookup(br#"{"items":[1,2]}"#).is_err());
        let wrapped =
            br#"{"data":[{"tokenSerialNumber":"1","userId":"u"},{"tokenSerialNumber":"2"}]}"#;
        assert_eq!(parse_lookup(wrapped).unwrap().len(), 2);
        assert!(parse_lookup(br#"{"error":"boom"}"#).is_err());
        assert!(
            parse_lookup(b"<html>oops")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(parse_lookup(b"[{\"a\":").is_err());
        assert!(parse_lookup(b"42").is_err());
    }
}
