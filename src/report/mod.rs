//! The report: its rows and statuses, the writer, the end summary.

pub mod status;
