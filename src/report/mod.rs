//! The report: its rows and statuses, the writer, the end summary; its sidecar and its lock;
//! reading a whole job back from a report, and the audit page.

pub(crate) mod columns;
pub(crate) mod files;
pub(crate) mod html;
pub(crate) mod invocation;
pub(crate) mod job;
pub(crate) mod lock;
pub(crate) mod meta;
pub(crate) mod resume;
pub mod row;
pub mod status;
pub(crate) mod summary;
pub(crate) mod summary_json;
pub(crate) mod timeline;
pub(crate) mod writer;
