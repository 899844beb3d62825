//! One request of a row, sent until it has a final answer: through the pacer, retried on
//! throttling, server errors and transport failures with backoff, and once with a fresh token
//! after a 403 (docs/design.md#pace-and-retries). Counts what it spends for the report.

use tokio::time::Instant;

use super::retry::{StatusClass, classify_status};
use super::state::{Shared, StopReason};
use crate::api::auth::Bearer;
use crate::api::exchange::Answer;
use crate::api::patch::TokenState;
use crate::credential::Credential;
use crate::report::row::Spent;

/// A request the engine can send.
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    Delete(&'a Credential),
    /// A device's credentials, by device serial.
    Lookup(&'a str),
    /// `disable` / `enable`: the row's change request, like a DELETE.
    Patch(&'a Credential, TokenState),
    /// A user, by email address.
    UserLookup(&'a str),
}

/// A request that got no usable final answer.
pub(crate) enum RequestError {
    /// Retries exhausted, or an error that retrying cannot fix.
    GaveUp(String),
    /// Interrupted between attempts.
    Aborted(String),
}

/// The requests of one row: where they go and what they spent so far.
pub(crate) struct RowRequests<'a> {
    pub(crate) shared: &'a Shared,
    /// Requests sent so far and their last answers.
    pub(crate) spent: Spent,
    pub(crate) first_sent: Option<Instant>,
    /// A DELETE or PATCH attempt got no answer: the server may have acted before the connection
    /// broke.
    pub(crate) unanswered: bool,
}

impl<'a> RowRequests<'a> {
    pub(crate) fn new(shared: &'a Shared) -> RowRequests<'a> {
        RowRequests {
            shared,
            spent: Spent::default(),
            first_sent: None,
            unanswered: false,
        }
    }

    /// Sends one request until it has a final answer: paced, retried on 429/5xx/transport
    /// errors, with one fresh token after a 403 when the token source can make one.
    pub(crate) async fn send(&mut self, request: Request<'_>) -> Result<Answer, RequestError> {
        let sh = self.shared;
        let mut bearer = self.bearer().await?;
        let mut renewed = false;
        let mut tries = 0u32;
        loop {
            tokio::select! {
                biased;
                _ = sh.abort.cancelled() => return Err(self.aborted()),
                // A row that has sent nothing yet is not in flight: after a stop it is not
                // started (the other workers' rows wait here for their first slot).
                _ = sh.stop.cancelled(), if self.spent.requests() == 0 => {
                    return Err(RequestError::Aborted(sh.skipped_note()));
                }
                _ = sh.pacer.acquire() => {}
            }
            if !renewed {
                // After the pacer, per attempt: a wait or a row retried for minutes must not
                // outlive a minted token.
                bearer = self.bearer().await?;
            }
            tries += 1;
            match request {
                Request::Delete(_) | Request::Patch(..) => self.spent.changes += 1,
                Request::Lookup(_) | Request::UserLookup(_) => self.spent.lookups += 1,
            }
            self.first_sent.get_or_insert_with(Instant::now);
            let sent_at = Instant::now();
            sh.counters.count_request();
            let sent = match request {
                Request::Delete(cred) => sh.client.delete_otp(cred, &bearer).await,
                Request::Lookup(device) => sh.client.lookup(device, &bearer).await,
                Request::Patch(cred, to) => sh.client.patch_otp(cred, to, &bearer).await,
                Request::UserLookup(email) => sh.client.lookup_user(email, &bearer).await,
            };
            let (wait, why) = match sent {
                Ok(answer) => {
                    sh.pacer.on_answer(sent_at, answer.status == 429);
                    match request {
                        Request::Delete(_) | Request::Patch(..) => {
                            self.spent.change_status = Some(answer.status)
                        }
                        Request::Lookup(_) | Request::UserLookup(_) => {
                            self.spent.lookup_status = Some(answer.status)
                        }
                    }
                    match classify_status(answer.status) {
                        StatusClass::Throttled => {
                            sh.counters.count_throttled();
                            // Everyone holds off; this worker then waits in acquire() too.
                            sh.pacer.hold_off(sh.retry.wait(tries, answer.retry_after));
                            (None, "HTTP 429 Too Many Requests".to_string())
                        }
                        StatusClass::Transient => (
                            Some(sh.retry.wait(tries, answer.retry_after)),
                            format!("HTTP {} {}", answer.status, answer.body_excerpt()),
                        ),
                        StatusClass::Forbidden if !renewed => {
                            let renewal = tokio::select! {
                                biased;
                                _ = sh.abort.cancelled() => return Err(self.aborted()),
                                r = sh.tokens.renew_after_forbidden(&bearer) => r,
                            };
                            match renewal {
                                Ok(Some(fresh)) => {
                                    tracing::debug!("403: retrying once with a fresh token");
                                    bearer = fresh;
                                    renewed = true;
                                    continue;
                                }
                                Ok(None) => return Ok(answer),
                                Err(e) => return Err(self.no_token(&e)),
                            }
                        }
                        _ => return Ok(answer),
                    }
                }
                Err(err) if err.is_retryable() => {
                    // Not a throttle: for the measured admitted rate it counts like any
                    // answer other than 429, or a flaky network would drain the rate.
                    sh.pacer.on_answer(sent_at, false);
                    if matches!(request, Request::Delete(_) | Request::Patch(..)) {
                        self.unanswered = true;
                    }
                    (Some(sh.retry.backoff(tries)), err.to_string())
                }
                Err(err) => return Err(RequestError::GaveUp(err.to_string())),
            };
            if tries >= sh.retry.max_attempts {
                let what = match request {
                    Request::Delete(_) => "DELETE",
                    Request::Lookup(_) => "lookup",
                    Request::Patch(_, to) => to.request_name(),
                    Request::UserLookup(_) => "users/lookup",
                };
                return Err(RequestError::GaveUp(format!(
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

    /// The token for the next attempt. Renewing may take a while (an OAuth issuer retried
    /// with backoff): an interrupt ends the wait.
    async fn bearer(&self) -> Result<std::sync::Arc<Bearer>, RequestError> {
        let sh = self.shared;
        tokio::select! {
            biased;
            _ = sh.abort.cancelled() => Err(self.aborted()),
            current = sh.tokens.current() => current.map_err(|e| self.no_token(&e)),
        }
    }

    /// No token can be had, after the token source's own retries: no request may go out
    /// without one, so the run stops; this row's next request was not sent (it is `skipped`,
    /// resumable). Rows already sent keep what they got.
    fn no_token(&self, e: &anyhow::Error) -> RequestError {
        let sh = self.shared;
        if !sh.stop.is_cancelled() {
            tracing::error!("stopping: no bearer token: {e:#}");
        }
        sh.stop(StopReason::NoToken {
            why: format!("{e:#}"),
        });
        if self.spent.requests() == 0 {
            return RequestError::Aborted(sh.skipped_note());
        }
        RequestError::Aborted(format!(
            "stopped after {} request(s): no access token for the next one could be fetched; \
             it will be sent again on resume",
            self.spent.requests()
        ))
    }

    fn aborted(&self) -> RequestError {
        RequestError::Aborted(format!(
            "interrupted after {} request(s) without a final answer; it will be retried on resume",
            self.spent.requests()
        ))
    }
}

/// One read-only lookup of `device` through the same pacer, retries and token renewal as
/// every row's requests: the check of the credentials before the plan. The answer as it came
/// and the requests it took, or why none came.
pub(crate) async fn probe_lookup(shared: &Shared, device: &str) -> Result<(Answer, u32), String> {
    let mut requests = RowRequests::new(shared);
    match requests.send(Request::Lookup(device)).await {
        Ok(answer) => Ok((answer, requests.spent.lookups)),
        Err(RequestError::GaveUp(why) | RequestError::Aborted(why)) => Err(why),
    }
}
