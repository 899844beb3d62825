//! One data record of the input as the rest of the tool sees it: its place in the file, its
//! credential and whether it may be sent.

use crate::credential::Credential;

/// One data record of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRow {
    /// 1-based index of the data record (header and blank rows excluded).
    pub row: u64,
    /// The file line the record starts on (the header is line 1).
    pub line: u64,
    /// The row's values, trimmed; "" when the column is absent or the cell empty. For invalid
    /// rows, the first 64 characters (bytes that are not UTF-8 shown as U+FFFD).
    pub credential: Credential,
    pub check: RowCheck,
}

/// The verdict on one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowCheck {
    Valid,
    Invalid {
        reason: String,
    },
    /// Repeats the valid row `first_row`; never sent.
    Duplicate {
        first_row: u64,
    },
}

impl InputRow {
    /// Valid, but the token or the user is missing, or the user is named by email: a lookup
    /// by device must resolve it or confirm it.
    pub(crate) fn needs_lookup(&self) -> bool {
        let c = &self.credential;
        self.check == RowCheck::Valid && super::needs_device_lookup(&c.token, &c.user, &c.email)
    }
}
