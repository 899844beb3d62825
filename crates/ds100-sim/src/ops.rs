//! What each API endpoint does once a request is through the gate: read the wire body, act
//! on the store, say what happened (docs/design.md#the-api-the-tool-relies-on).

use bytes::Bytes;

use crate::endpoint::Endpoint;
use crate::respond::{Answer, to_json};
use crate::state::State;
use crate::stats::bump;
use crate::store::{DeleteOutcome, lookup_record};
use crate::wire::{Credential, LookupRequest, UserLookupRequest};

/// Performs `endpoint`'s operation on `body` (or on the error reading it).
pub(crate) fn perform(state: &State, endpoint: Endpoint, body: Result<Bytes, String>) -> Answer {
    match endpoint {
        Endpoint::Delete => delete(state, body),
        Endpoint::Lookup => lookup(state, body),
        Endpoint::Users => users_lookup(state, body),
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

fn lookup(state: &State, body: Result<Bytes, String>) -> Answer {
    let request: LookupRequest = match parse_body(body) {
        Ok(request) => request,
        Err(why) => return bad_request(state, &why),
    };
    let on_device = state.store.on_device(&request.device_serial_number);
    if on_device.is_empty() {
        bump(&state.counters.lookup_not_found);
        return Answer::error(404, "no DS100 authenticator with this serial number");
    }
    bump(&state.counters.lookups_found);
    let records: Vec<_> = on_device.iter().map(lookup_record).collect();
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
