//! The `/__sim/*` endpoints, for tests and scripts: the store, the counters and the arrival
//! times, read back without auth and not counted as API requests.

use bytes::Bytes;

use crate::respond::to_json;
use crate::state::State;
use crate::store::token_status;

/// `tokenSerialNumber,deviceSerialNumber,userId,status` with a header, sorted; `status` is
/// the `tokenStatus` (`Enabled`, `Disabled`). Its name is not one the client takes for a
/// credential field, so the store is usable as an input file as it is.
pub(crate) fn store_csv(state: &State) -> Bytes {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail; should it ever, the CSV is merely cut short.
    let _ = out.write_record([
        "tokenSerialNumber",
        "deviceSerialNumber",
        "userId",
        "status",
    ]);
    for (cred, disabled) in state.store.snapshot_with_status() {
        let _ = out.write_record([
            cred.token_serial_number.as_str(),
            cred.device_serial_number.as_str(),
            cred.user_id.as_str(),
            token_status(disabled),
        ]);
    }
    out.into_inner().map(Bytes::from).unwrap_or_default()
}

pub(crate) fn stats_json(state: &State) -> Bytes {
    to_json(&state.stats()).unwrap_or_default()
}

pub(crate) fn arrivals_json(state: &State) -> Bytes {
    to_json(&state.arrivals()).unwrap_or_default()
}
