//! Row statuses of the report (docs/design.md#statuses) and what each counts as.

use std::fmt;
use std::str::FromStr;

/// The final status of one input row. The names are the report's, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Deleted,
    /// `disable`: the PATCH answered naming the row's credential, disabled.
    Disabled,
    /// `enable`: the PATCH answered naming the row's credential, enabled.
    Enabled,
    Absent,
    WouldDelete,
    WouldDisable,
    WouldEnable,
    Valid,
    Duplicate,
    Mismatch,
    Ambiguous,
    NotFound,
    Invalid,
    Unauthorized,
    Failed,
    Skipped,
}

impl Status {
    pub const ALL: [Status; 16] = [
        Status::Deleted,
        Status::Disabled,
        Status::Enabled,
        Status::Absent,
        Status::WouldDelete,
        Status::WouldDisable,
        Status::WouldEnable,
        Status::Valid,
        Status::Duplicate,
        Status::Mismatch,
        Status::Ambiguous,
        Status::NotFound,
        Status::Invalid,
        Status::Unauthorized,
        Status::Failed,
        Status::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Deleted => "deleted",
            Status::Disabled => "disabled",
            Status::Enabled => "enabled",
            Status::Absent => "absent",
            Status::WouldDelete => "would_delete",
            Status::WouldDisable => "would_disable",
            Status::WouldEnable => "would_enable",
            Status::Valid => "valid",
            Status::Duplicate => "duplicate",
            Status::Mismatch => "mismatch",
            Status::Ambiguous => "ambiguous",
            Status::NotFound => "not_found",
            Status::Invalid => "invalid",
            Status::Unauthorized => "unauthorized",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }

    /// Counts as ok for the exit code (docs/design.md#statuses, "counts as").
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Status::Deleted
                | Status::Disabled
                | Status::Enabled
                | Status::Absent
                | Status::WouldDelete
                | Status::WouldDisable
                | Status::WouldEnable
                | Status::Valid
                | Status::Duplicate
        )
    }

    /// A resumed run does not send this row again, in any mode
    /// (docs/design.md#report-resume-lock); a mode's own outcome (`deleted` aside) is final in
    /// that mode only: `commands::run::is_final_in`.
    pub(crate) fn is_final(self) -> bool {
        matches!(
            self,
            Status::Deleted
                | Status::Absent
                | Status::Duplicate
                | Status::Invalid
                | Status::Mismatch
                | Status::Ambiguous
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status '{s}'"))
    }
}

/// Every status name, for messages that list the valid ones.
pub(crate) fn all_names() -> String {
    Status::ALL.map(Status::as_str).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indexes_are_dense() {
        for (i, st) in Status::ALL.into_iter().enumerate() {
            assert_eq!(st.as_str().parse::<Status>().unwrap(), st);
            assert_eq!(st.index(), i);
        }
    }

    #[test]
    fn ok_and_final_follow_the_spec() {
        let ok: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_ok()).collect();
        assert_eq!(
            ok,
            [
                Status::Deleted,
                Status::Disabled,
                Status::Enabled,
                Status::Absent,
                Status::WouldDelete,
                Status::WouldDisable,
                Status::WouldEnable,
                Status::Valid,
                Status::Duplicate
            ]
        );
        assert!(!Status::NotFound.is_final());
        assert!(!Status::Skipped.is_final());
        assert!(!Status::Failed.is_final());
        assert!(Status::Mismatch.is_final());
    }
}
