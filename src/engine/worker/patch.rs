//! What a row does in `disable` and `enable` (docs/design.md#disable-and-enable): a lookup
//! first, because the PATCH body names no token serial and only the lookup can show that the
//! credential the tenant will change is the row's; then the PATCH, whose answer must name
//! exactly that credential in the wanted state. A dry run stops after the lookup and notes the
//! credential's current `tokenStatus`.

use super::super::changed::{self, PatchVerdict};
use super::super::request::{Request, RequestError};
use super::super::retry::{StatusClass, classify_status};
use super::{Confirmed, Ended, LookupError, RowRun, forbidden_note, foreign_404_error};
use crate::api::answer;
use crate::api::exchange::Answer;
use crate::api::patch::{TokenState, parse_patch};
use crate::credential::{Credential, same_user};
use crate::engine::matching::{self, Verdict};
// The note an undo reads back (`from_report`): a credential found already in the wanted state
// was not changed by this command.
use crate::input::from_report::already_note;
use crate::report::status::Status;

/// The ok status of a run that puts credentials in state `to`.
fn done_status(to: TokenState) -> Status {
    match to {
        TokenState::Disabled => Status::Disabled,
        TokenState::Enabled => Status::Enabled,
    }
}

/// The status of a dry run of `to`.
fn would_status(to: TokenState) -> Status {
    match to {
        TokenState::Disabled => Status::WouldDisable,
        TokenState::Enabled => Status::WouldEnable,
    }
}

impl RowRun<'_> {
    /// One row of `disable` / `enable` (`dry_run`: looked up and classified only). `email`:
    /// the address the row's user was resolved from.
    pub(super) async fn patch_row(
        &mut self,
        row: &Credential,
        email: Option<&str>,
        to: TokenState,
        dry_run: bool,
    ) -> Ended {
        let cred = match self.checked_lookup(row, email).await {
            Ok(cred) => cred,
            Err(ended) => return ended,
        };
        if let Some(ended) = self.others_of_the_user(&cred, to) {
            return ended;
        }
        let before = self.listed_status(&cred);
        let mut ended = if dry_run {
            let note = match &before {
                Some(s) if to.is(s) => format!(
                    "tokenStatus {s}: already {}, a real run changes nothing",
                    to.done()
                ),
                Some(s) => format!("tokenStatus {s}"),
                None => "tokenStatus not stated by the lookup".to_string(),
            };
            Ended::new(would_status(to), note)
        } else {
            self.patch(&cred, to, before.as_deref()).await
        };
        ended.resolved = Some(cred);
        ended
    }

    /// The PATCH names only the device and the user: when the lookup lists another credential
    /// of that user on the device (or one whose user it does not give), the tenant would
    /// change that one too. Refused before anything is sent, as `ambiguous`.
    fn others_of_the_user(&self, cred: &Credential, to: TokenState) -> Option<Ended> {
        let others: Vec<&Credential> = self
            .listed
            .iter()
            .map(|(c, _)| c)
            .filter(|c| c.token != cred.token)
            .filter(|c| c.user.is_empty() || same_user(&c.user, &cred.user))
            .collect();
        if others.is_empty() {
            return None;
        }
        let listed = others
            .iter()
            .take(5)
            .map(|c| {
                if c.token.is_empty() {
                    "?"
                } else {
                    c.token.as_str()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some(Ended::new(
            Status::Ambiguous,
            format!(
                "device {} also holds token(s) {listed} of user {} (or whose user the lookup \
                 does not give): {} names only the device and the user, so the tenant would {} \
                 those too; nothing was sent. Handle this device on the tenant by hand",
                cred.device,
                cred.user,
                to.request_name(),
                to.verb()
            ),
        ))
    }

    /// The `tokenStatus` the last lookup stated for `cred`, if it did.
    fn listed_status(&self, cred: &Credential) -> Option<String> {
        self.listed
            .iter()
            .find(|(c, _)| c.token == cred.token && same_user(&c.user, &cred.user))
            .and_then(|(_, s)| s.clone())
    }

    /// PATCHes the looked-up credential `cred` to `to`; `before` is its `tokenStatus` as the
    /// lookup stated it.
    async fn patch(&mut self, cred: &Credential, to: TokenState, before: Option<&str>) -> Ended {
        let what = to.request_name();
        let mut respelled: Option<Credential> = None;
        loop {
            let sent = respelled.as_ref().unwrap_or(cred);
            let answer = match self.requests.send(Request::Patch(sent, to)).await {
                Ok(a) => a,
                Err(RequestError::GaveUp(why)) => return Ended::new(Status::Failed, why),
                Err(RequestError::Aborted(why)) => return Ended::new(Status::Skipped, why),
            };
            let ended = match classify_status(answer.status) {
                StatusClass::Success => read_change(sent, to, &answer, before),
                // A gateway's or proxy's 404 says nothing about the credential.
                StatusClass::NotFound if let Some(found) = answer::foreign_404(&answer) => {
                    Ended::new(Status::Failed, foreign_404_error(what, &found))
                }
                StatusClass::NotFound => match self.confirm_404(sent, what).await {
                    Confirmed::Ended(ended) => ended,
                    Confirmed::Respelled(held) if respelled.is_none() => {
                        tracing::debug!("404: the tenant spells the userId differently; retrying");
                        respelled = Some(held);
                        continue;
                    }
                    Confirmed::Respelled(_) => Ended::new(
                        Status::NotFound,
                        format!("{what} answered 404 but a lookup still lists this credential"),
                    ),
                },
                StatusClass::Forbidden => {
                    Ended::new(Status::Unauthorized, forbidden_note(&answer, what))
                }
                StatusClass::Rejected => self.refused(sent, to, &answer).await,
                _ => Ended::new(
                    Status::Failed,
                    format!(
                        "{what} answered HTTP {}: {}",
                        answer.status,
                        answer.body_excerpt()
                    ),
                ),
            };
            return ended;
        }
    }

    /// The PATCH was refused (400, 409, …): a tenant may refuse to put a credential in the
    /// state it is already in. A lookup says whether it is in the wanted state now; only then
    /// is the row done, and the note says how it came to be.
    async fn refused(&mut self, sent: &Credential, to: TokenState, answer: &Answer) -> Ended {
        let what = to.request_name();
        let said = format!(
            "{what} answered HTTP {}: {}",
            answer.status,
            answer.body_excerpt()
        );
        let held = match self.lookup(&sent.device).await {
            Ok(held) => held,
            Err(LookupError::Aborted(why)) => return Ended::new(Status::Skipped, why),
            Err(LookupError::Unauthorized(why) | LookupError::Failed(why)) => {
                return Ended::new(
                    Status::Failed,
                    format!("{said}; the lookup to check its state failed ({why})"),
                );
            }
        };
        let listed = match matching::match_row(sent, &held) {
            Verdict::Match(c) => self.listed_status(&c),
            _ => None,
        };
        match listed {
            Some(s) if to.is(&s) => Ended::new(
                done_status(to),
                format!(
                    "{} ({said}; a lookup lists it with tokenStatus {s})",
                    already_note(done_status(to))
                ),
            ),
            _ => Ended::new(Status::Failed, said),
        }
    }
}

/// A 200 to the PATCH: done only when the API's answer names exactly the row's credential in
/// the wanted state.
fn read_change(sent: &Credential, to: TokenState, answer: &Answer, before: Option<&str>) -> Ended {
    let what = to.request_name();
    if let Some(why) = answer::foreign_change_success(answer, what) {
        return Ended::new(Status::Failed, why);
    }
    let records = match parse_patch(&answer.body) {
        Ok(records) => records,
        Err(why) => {
            return Ended::new(
                Status::Failed,
                format!(
                    "{what} answered 200 but {why}: nothing says token {} was {}; check it on \
                     the tenant",
                    sent.token,
                    to.done()
                ),
            );
        }
    };
    match changed::judge_patch(sent, to, &records) {
        PatchVerdict::Done { note } => {
            let already = before
                .filter(|b| to.is(b))
                .map(|_| already_note(done_status(to)));
            let note = [already.unwrap_or_default(), note]
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            Ended::new(done_status(to), note)
        }
        PatchVerdict::Another(why) => Ended {
            changed_another: true,
            ..Ended::new(Status::Mismatch, why)
        },
        PatchVerdict::NotDone(why) => Ended::new(Status::Failed, why),
    }
}
