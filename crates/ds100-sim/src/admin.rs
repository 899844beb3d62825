//! The `/__sim/*` endpoints, for tests and scripts: the store, the counters and the arrival
//! times, read back without auth and not counted as API requests.

use bytes::Bytes;

use crate::respond::to_json;
use crate::state::State;

/// `tokenSerialNumber,deviceSerialNumber,userId` with a header, sorted.
pub(crate) fn store_csv(state: &State) -> Bytes {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail; should it ever, the CSV is merely cut short.
    let _ = out.write_record(["tokenSerialNumber", "deviceSerialNumber", "userId"]);
    for cred in state.store.snapshot() {
        let _ = out.serialize(&cred);
    }
    out.into_inner().map(Bytes::from).unwrap_or_default()
}

pub(crate) fn stats_json(state: &State) -> Bytes {
    to_json(&state.stats()).unwrap_or_default()
}

pub(crate) fn arrivals_json(state: &State) -> Bytes {
    to_json(&state.arrivals()).unwrap_or_default()
}
