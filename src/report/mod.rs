//! The report: its rows and statuses, the writer, the end summary; its sidecar and its lock.

pub(crate) mod files;
pub(crate) mod lock;
pub(crate) mod meta;
pub(crate) mod resume;
pub mod row;
pub mod status;
pub(crate) mod summary;
pub(crate) mod writer;
