//! The worker loop, written once, and what a row does: delete it, explain a DELETE's 404 with
//! a lookup, resolve missing fields, resolve the user its email names and confirm it by a
//! device lookup, audit it in a dry run; disable or enable it (`patch`). One report row per
//! row (docs/design.md#what-an-answer-means, docs/design.md#people-by-email).

mod patch;

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use super::matching::{self, Verdict};
use super::people::{self, Resolved};
use super::request::{Request, RequestError, RowRequests};
use super::retry::{StatusClass, classify_status};
use super::state::{Mode, Shared, StopReason};
use crate::api::answer::{self, DeleteSuccess};
use crate::api::exchange::Answer;
use crate::api::lookup::parse_lookup;
use crate::api::users::User;
use crate::credential::{Credential, Field, same_user};
use crate::input::{InputRow, Padding};
use crate::report::row::ReportRow;
use crate::report::status::Status;

/// One worker: pulls rows until the channel closes, sends one report row per row.
pub(crate) async fn work(
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
    Respelled(Credential),
}

/// How one row ended, before it becomes a report row.
struct Ended {
    status: Status,
    error: String,
    /// The credential a lookup resolved the row to.
    resolved: Option<Credential>,
    /// The tenant answered the row's change naming another credential: the run stops.
    changed_another: bool,
}

impl Ended {
    fn new(status: Status, error: impl Into<String>) -> Ended {
        Ended {
            status,
            error: error.into(),
            resolved: None,
            changed_another: false,
        }
    }
}

async fn process(shared: &Shared, row: InputRow) -> ReportRow {
    let mut run = RowRun {
        requests: RowRequests::new(shared),
        listed: Vec::new(),
    };
    let cred = &row.credential;
    let (ended, person) = match cred.known_email() {
        Some(email) => run.by_email(cred, email).await,
        None => {
            let ended = match shared.mode {
                Mode::Patch { to, dry_run } => run.patch_row(cred, None, to, dry_run).await,
                Mode::DryRun => run.audit(cred, None).await,
                Mode::Delete { verify } if verify || row.needs_lookup() => {
                    run.lookup_then_delete(cred, None).await
                }
                Mode::Delete { .. } => run.delete(cred).await,
            };
            (ended, None)
        }
    };
    let mut spent = run.requests.spent;
    spent.elapsed_ms = run
        .requests
        .first_sent
        .map(|t| t.elapsed().as_millis() as u64);
    if spent.requests() > 0 {
        shared.counters.count_row_sent();
    }
    if ended.changed_another {
        // No new row starts and rows in flight make no further attempt: a tenant that changes
        // credentials nobody named must not be sent more changes.
        tracing::error!(
            row = row.row,
            "safety stop: the tenant answered a change naming another credential"
        );
        shared.stop(StopReason::WrongCredential { row: row.row });
        shared.abort.cancel();
    }
    // The report keeps the input's values as written; a lookup only fills what it left empty.
    // The user an email names is the row's userId whatever the device lookup then said.
    let mut row = row;
    let (mut token_resolved, mut user_resolved) = (false, false);
    let cred = &mut row.credential;
    if let Some(user) = &person
        && cred.user.is_empty()
    {
        cred.user = user.id.clone();
        user_resolved = true;
    }
    if let Some(held) = ended.resolved {
        if cred.token.is_empty() && !held.token.is_empty() {
            cred.token = held.token;
            token_resolved = true;
        }
        if cred.user.is_empty() && !held.user.is_empty() {
            cred.user = held.user;
            user_resolved = true;
        }
    }
    let resolved = [
        (token_resolved, Field::Token.name()),
        (user_resolved, Field::User.name()),
    ]
    .into_iter()
    .filter_map(|(yes, name)| yes.then_some(name))
    .collect::<Vec<_>>()
    .join(";");
    let email = row.credential.email.clone();
    let mut report = ReportRow::finished(row, ended.status, ended.error, spent);
    report.resolved = resolved;
    // Who the address named, for an auditor to hold next to the HR line.
    if let Some(user) = person {
        let who = format!("email {email} names {}", user.describe());
        report.note = if report.note.is_empty() {
            who
        } else {
            format!("{}; {who}", report.note)
        };
    }
    report
}

/// Why a lookup gave no list of credentials.
enum LookupError {
    Unauthorized(String),
    Failed(String),
    Aborted(String),
}

/// One row on its way: the requests it sends and what they spent.
struct RowRun<'a> {
    requests: RowRequests<'a>,
    /// What the last lookup listed, with each credential's `tokenStatus` as it stated it.
    listed: Vec<(Credential, Option<String>)>,
}

impl RowRun<'_> {
    /// Deletes one fully known credential and explains a 404 with a lookup.
    async fn delete(&mut self, cred: &Credential) -> Ended {
        let mut respelled: Option<Credential> = None;
        loop {
            let sent = respelled.as_ref().unwrap_or(cred);
            let answer = match self.requests.send(Request::Delete(sent)).await {
                Ok(a) => a,
                Err(RequestError::GaveUp(why)) => return Ended::new(Status::Failed, why),
                Err(RequestError::Aborted(why)) => return Ended::new(Status::Skipped, why),
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
                StatusClass::NotFound => match self.confirm_404(sent, "DELETE").await {
                    Confirmed::Ended(ended) => ended,
                    // The tenant spells the user id in another case and may compare it
                    // exactly: once more, with its own spelling.
                    Confirmed::Respelled(held) if respelled.is_none() => {
                        tracing::debug!("404: the tenant spells the userId differently; retrying");
                        respelled = Some(held);
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
                    r.token, r.user
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

    /// The row's change request `what` (DELETE, or a PATCH) answered 404: either the
    /// credential is gone (the goal, or nothing left to change) or the row names it wrongly (it
    /// still works). Only a lookup tells which.
    async fn confirm_404(&mut self, cred: &Credential, what: &str) -> Confirmed {
        let held = match self.lookup(&cred.device).await {
            Ok(held) => held,
            Err(LookupError::Aborted(why)) => {
                return Confirmed::Ended(Ended::new(Status::Skipped, why));
            }
            Err(LookupError::Unauthorized(why) | LookupError::Failed(why)) => {
                return Confirmed::Ended(Ended::new(
                    Status::NotFound,
                    format!("{what} answered 404 and the lookup to explain it failed ({why})"),
                ));
            }
        };
        if held.is_empty()
            && let Some(mut ended) = self.lost_zeros(&cred.device).await
        {
            if ended.status != Status::Skipped {
                ended.error = format!("{what} answered 404: {}", ended.error);
            }
            return Confirmed::Ended(ended);
        }
        Confirmed::Ended(match matching::match_row(cred, &held) {
            Verdict::Absent(why) => {
                let note = if self.requests.unanswered && what == "DELETE" {
                    "; an earlier DELETE attempt got no answer and most likely removed it"
                } else {
                    ""
                };
                Ended::new(Status::Absent, format!("{what} answered 404: {why}{note}"))
            }
            Verdict::Mismatch(why) => {
                Ended::new(Status::Mismatch, format!("{what} answered 404: {why}"))
            }
            Verdict::Match(h) if h.user != cred.user || h.token != cred.token => {
                return Confirmed::Respelled(h);
            }
            Verdict::Match(_) => Ended::new(
                Status::NotFound,
                format!("{what} answered 404 but a lookup still lists this credential"),
            ),
            Verdict::Ambiguous(why) => Ended::new(
                Status::NotFound,
                format!("{what} answered 404 and the lookup cannot tell why: {why}"),
            ),
        })
    }

    /// A row naming its user by email: the user the address names (one lookup per address per
    /// run), then the row as one with that userId — always confirmed by a device lookup before
    /// anything is deleted, never a DELETE built from the resolved id alone. Also the user, when
    /// the address named one.
    async fn by_email(&mut self, row: &Credential, email: &str) -> (Ended, Option<User>) {
        let shared = self.requests.shared;
        let requests = &mut self.requests;
        let ask = || async move {
            match requests.send(Request::UserLookup(email)).await {
                Ok(answer) => Ok(people::read_user_answer(email, &answer)),
                Err(RequestError::GaveUp(why)) => Ok(Resolved::Failed(format!(
                    "the user lookup of email {email} failed: {why}"
                ))),
                Err(RequestError::Aborted(why)) => Err(why),
            }
        };
        let user = match shared.people.resolve(email, ask).await {
            Ok(Resolved::User(user)) => user,
            // An address the tenant does not know is a failure, never "already gone".
            Ok(Resolved::NoUser(why)) => return (Ended::new(Status::NotFound, why), None),
            Ok(Resolved::Several(why)) => return (Ended::new(Status::Ambiguous, why), None),
            Ok(Resolved::Unauthorized(why)) => {
                return (Ended::new(Status::Unauthorized, why), None);
            }
            Ok(Resolved::Failed(why)) => return (Ended::new(Status::Failed, why), None),
            Err(why) => return (Ended::new(Status::Skipped, why), None),
        };
        if let Some(given) = row.known_user()
            && !same_user(given, &user.id)
        {
            let why = format!(
                "the row's userId and email disagree: email {email} names {}, not userId \
                 {given}; nothing was sent beyond the user lookup",
                user.describe()
            );
            return (Ended::new(Status::Mismatch, why), Some(user));
        }
        let mut want = row.clone();
        if want.user.is_empty() {
            want.user = user.id.clone();
        }
        let ended = match shared.mode {
            Mode::Patch { to, dry_run } => self.patch_row(&want, Some(email), to, dry_run).await,
            Mode::DryRun => self.audit(&want, Some(email)).await,
            Mode::Delete { .. } => self.lookup_then_delete(&want, Some(email)).await,
        };
        (ended, Some(user))
    }

    /// Looks the device up first; deletes only the one credential that matches the row.
    /// `email`: the address the row's user was resolved from.
    async fn lookup_then_delete(&mut self, row: &Credential, email: Option<&str>) -> Ended {
        let cred = match self.checked_lookup(row, email).await {
            Ok(cred) => cred,
            Err(ended) => return ended,
        };
        let mut ended = self.delete(&cred).await;
        ended.resolved = Some(cred);
        ended
    }

    /// Dry run: what a real run would do with this row.
    async fn audit(&mut self, row: &Credential, email: Option<&str>) -> Ended {
        match self.checked_lookup(row, email).await {
            Ok(cred) => Ended {
                resolved: Some(cred),
                ..Ended::new(Status::WouldDelete, "")
            },
            Err(ended) => ended,
        }
    }

    /// A lookup of the row's device, classified: the matching credential, or how the row ends.
    /// For a user resolved from `email`, a device holding only other users' credentials is a
    /// mismatch: the address and the device do not belong together.
    async fn checked_lookup(
        &mut self,
        row: &Credential,
        email: Option<&str>,
    ) -> Result<Credential, Ended> {
        let device = &row.device;
        let held = match self.lookup(device).await {
            Ok(h) => h,
            Err(LookupError::Unauthorized(why)) => {
                return Err(Ended::new(Status::Unauthorized, why));
            }
            Err(LookupError::Failed(why)) => return Err(Ended::new(Status::Failed, why)),
            Err(LookupError::Aborted(why)) => return Err(Ended::new(Status::Skipped, why)),
        };
        if held.is_empty()
            && let Some(ended) = self.lost_zeros(device).await
        {
            return Err(ended);
        }
        if let Some(email) = email
            && let Some(why) = matching::held_by_others(row, email, &held)
        {
            return Err(Ended::new(Status::Mismatch, why));
        }
        match matching::match_row(row, &held) {
            Verdict::Match(cred) => Ok(cred),
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
        let Padding { forms, suspicious } = self.requests.shared.device_serials.padding(device);
        if !suspicious && self.requests.unanswered {
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
    async fn lookup(&mut self, device: &str) -> Result<Vec<Credential>, LookupError> {
        let answer = match self.requests.send(Request::Lookup(device)).await {
            Ok(a) => a,
            Err(RequestError::GaveUp(why)) => {
                return Err(LookupError::Failed(format!("lookup: {why}")));
            }
            Err(RequestError::Aborted(why)) => return Err(LookupError::Aborted(why)),
        };
        match classify_status(answer.status) {
            StatusClass::Success if let Some(why) = answer::foreign_lookup_success(&answer) => {
                Err(LookupError::Failed(why))
            }
            // "The device holds nothing" only when the API itself says so.
            StatusClass::NotFound if let Some(what) = answer::foreign_404(&answer) => {
                Err(LookupError::Failed(foreign_404_error("lookup", &what)))
            }
            StatusClass::Success => match parse_lookup(&answer.body) {
                Ok(records) => {
                    self.listed = records
                        .iter()
                        .map(|r| (r.credential(device), r.token_status.clone()))
                        .collect();
                    Ok(matching::held(device, &records))
                }
                Err(why) => Err(LookupError::Failed(format!(
                    "lookup answered {}: {why}",
                    answer.status
                ))),
            },
            StatusClass::NotFound => {
                self.listed.clear();
                Ok(Vec::new())
            }
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
