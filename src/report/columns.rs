//! The report's header: its columns, in order. Its own file because the input reader
//! recognises one of the tool's reports by it (a report is a valid input), and the report's
//! rows are built from the input's: neither may import the other's row types.

/// The report's columns, in order.
pub const COLUMNS: [&str; 16] = [
    "row",
    "line",
    "tokenSerialNumber",
    "deviceSerialNumber",
    "userId",
    "email",
    "status",
    "httpStatus",
    "attempts",
    "lookupStatus",
    "lookups",
    "resolved",
    "error",
    "note",
    "finishedAt",
    "elapsedMs",
];
