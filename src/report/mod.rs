//! The report: its rows and statuses, the writer, the end summary.

pub mod resume;
pub mod row;
pub mod status;
pub mod summary;
pub mod writer;
