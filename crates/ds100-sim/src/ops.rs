//! What each API endpoint does once a request is through the gate: read the wire body, act
//! on the store, say what happened (docs/design.md#the-api-the-tool-relies-on).

use bytes::Bytes;

use crate::endpoint::Endpoint;
use crate::respond::{Answer, to_json};
use crate::state::State;
use crate::stats::bump;
use crate::store::{DeleteOutcome, lookup_record, token_status};
use crate::wire::{Credential, LookupRequest, PatchRecord, PatchRequest, UserLookupRequest};

/// Performs `endpoint`'s operation on `body` (or on the error reading it).
pub(crate) fn perform(state: &State, endpoint: Endpoint, body: Result<Bytes, String>) -> Answer {
    match endpoint {
        Endpoint::Delete => delete(state, body),
        Endpoint::Lookup => lookup(state, body),
        Endpoint::Users => users_lookup(state, body),
        Endpoint::Disable => patch(state, body, true),
        Endpoint::Enable => patch(state, body, false),
    }
}

/// `PATCH …/disable/otp` (`disable`) or `…/enable/otp`: every credential of the user on the
/// device, answered as an array of what it changed; 404 when the device holds none of theirs.
fn patch(state: &State, body: Result<Bytes, String>, disable: bool) -> Answer {
    let request: PatchRequest = match parse_body(body) {
        Ok(request) => request,
        Err(why) => return bad_request(state, &why),
    };
    match state
        .store
        .set_status(&request.device_serial_number, &request.user_id, disable)
    {
        Some(records) => {
            bump(if disable {
                &state.counters.disabled
            } else {
                &state.counters.enabled
            });
            match to_json(&records) {
                Some(body) => Answer { status: 200, body },
                None => Answer::error(500, "could not encode the answer"),
            }
        }
        None => {
            bump(&state.counters.patch_not_found);
            Answer::error(404, "the user or the DS100 authenticator does not exist")
        }
    }
}

fn delete(state: &State, body: Result<Bytes, String>) -> Answer {
    let cred: Credential = match parse_body(body) {
        Ok(cred) => cred,
        Err(why) => return bad_request(state, &why),
    };
    match state.store.delete(&cred) {
        DeleteOutcome::Deleted => {
            bump(&state.counters.deleted);
            // No response body on success, as the API answers.
            Answer {
                status: 200,
                body: Bytes::new(),
            }
        }
        DeleteOutcome::NotFound { already_deleted } => {
            bump(&state.counters.delete_not_found);
            if already_deleted {
                bump(&state.counters.deletes_of_already_deleted);
            }
            Answer::error(404, "the user or the DS100 authenticator does not exist")
        }
    }
}

/// The `other-token` / `other-user` faults: a PATCH answered 200 as if the tenant had changed
/// another credential than the request's user holds on the device (another token serial, or
/// another user), and nothing changed. A request naming nothing the store holds is answered
/// as the PATCH would be (404).
pub(crate) fn naming_another(
    state: &State,
    endpoint: Endpoint,
    body: Result<Bytes, String>,
    other_user: bool,
) -> Answer {
    let request: PatchRequest = match parse_body(body) {
        Ok(request) => request,
        Err(why) => return bad_request(state, &why),
    };
    let disabled = endpoint == Endpoint::Disable;
    let records: Vec<PatchRecord> = state
        .store
        .on_device_with_status(&request.device_serial_number)
        .into_iter()
        .filter(|(c, _)| c.user_id.eq_ignore_ascii_case(&request.user_id))
        .map(|(c, _)| PatchRecord {
            user_id: if other_user {
                OTHER_USER.to_string()
            } else {
                c.user_id.clone()
            },
            token_serial_number: if other_user {
                c.token_serial_number.clone()
            } else {
                neighbour(&c.token_serial_number)
            },
            token_status: token_status(disabled).to_string(),
            token_status_changed_at: humantime::format_rfc3339_millis(std::time::SystemTime::now())
                .to_string(),
            token_status_changed_by: "ds100-sim admin API".to_string(),
            device_serial_number: c.device_serial_number,
        })
        .collect();
    if records.is_empty() {
        return Answer::error(404, "the user or the DS100 authenticator does not exist");
    }
    match to_json(&records) {
        Some(body) => Answer { status: 200, body },
        None => Answer::error(500, "could not encode the answer"),
    }
}

/// The user `other-user` names.
const OTHER_USER: &str = "0badc0de-0000-4000-8000-00000000beef";

/// Another serial of the same length: the last character moved on by one (`…38` → `…39`,
/// `…9` → `…0`), as the neighbouring token of a batch would be.
fn neighbour(serial: &str) -> String {
    let mut chars: Vec<char> = serial.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = match *last {
            '9' => '0',
            'z' => 'a',
            'Z' => 'A',
            c if c.is_ascii_alphanumeric() => char::from(c as u8 + 1),
            _ => '0',
        };
    }
    chars.into_iter().collect()
}

fn lookup(state: &State, body: Result<Bytes, String>) -> Answer {
    let request: LookupRequest = match parse_body(body) {
        Ok(request) => request,
        Err(why) => return bad_request(state, &why),
    };
    let on_device = state
        .store
        .on_device_with_status(&request.device_serial_number);
    if on_device.is_empty() {
        bump(&state.counters.lookup_not_found);
        return Answer::error(404, "no DS100 authenticator with this serial number");
    }
    bump(&state.counters.lookups_found);
    let records: Vec<_> = on_device
        .iter()
        .map(|(cred, status)| lookup_record(cred, status.as_ref()))
        .collect();
    match to_json(&records) {
        Some(body) => Answer { status: 200, body },
        None => Answer::error(500, "could not encode the answer"),
    }
}

/// The user an address names, ignoring case; 404 when no user has it.
fn users_lookup(state: &State, body: Result<Bytes, String>) -> Answer {
    let request: UserLookupRequest = match parse_body(body) {
        Ok(request) => request,
        Err(why) => return bad_request(state, &why),
    };
    let Some(user) = state.users.lookup(request.email.trim()) else {
        bump(&state.counters.user_lookup_not_found);
        return Answer::error(404, "no user with this email address");
    };
    bump(&state.counters.user_lookups_found);
    match to_json(&user) {
        Some(body) => Answer { status: 200, body },
        None => Answer::error(500, "could not encode the answer"),
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: Result<Bytes, String>) -> Result<T, String> {
    let body = body.map_err(|e| format!("could not read the request body: {e}"))?;
    let trimmed = body.trim_ascii_start();
    if trimmed.is_empty() {
        return Err("missing JSON request body".to_string());
    }
    // serde's derive also accepts a JSON array for a struct; the API takes only an object.
    if !trimmed.starts_with(b"{") {
        return Err("the request body must be a JSON object".to_string());
    }
    serde_json::from_slice(&body).map_err(|e| format!("malformed request body: {e}"))
}

fn bad_request(state: &State, why: &str) -> Answer {
    bump(&state.counters.bad_requests);
    Answer::error(400, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_differ_in_the_last_character_only() {
        assert_eq!(neighbour("014010008038"), "014010008039");
        assert_eq!(neighbour("014010008039"), "014010008030");
        assert_eq!(neighbour("AB12z"), "AB12a");
        assert_eq!(neighbour(""), "");
    }
}
