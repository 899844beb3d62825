//! The DS100 OTP credential the tool deletes: token serial, device serial and user id, as the
//! input names it, a lookup lists it and a DELETE sends it; and the email address an input
//! row may name its user by instead of, or as well as, the user id.

/// One DS100 OTP credential. Values are plain strings as written: serials keep their leading
/// zeros (`014010008038` is not `14010008038`), user ids keep their case.
///
/// An empty field is one its source did not give: a column the input lacks or a cell left
/// empty (a lookup fills it in), or a field a lookup record left out or sent as null (never
/// proof of anything). The device serial is always given: the input requires it and a lookup
/// is made by it. A DELETE needs all three (`is_complete`).
///
/// `email` is the address the input names the user by (docs/design.md#people-by-email): it
/// is never sent to the DS100 calls, only resolved to a user id first. Lookup records and
/// DELETE bodies leave it empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credential {
    pub token: String,
    pub device: String,
    pub user: String,
    pub email: String,
}

impl Credential {
    pub(crate) fn new(
        token: impl Into<String>,
        device: impl Into<String>,
        user: impl Into<String>,
    ) -> Credential {
        Credential {
            token: token.into(),
            device: device.into(),
            user: user.into(),
            email: String::new(),
        }
    }

    /// The same credential, its user named by this email address too.
    pub(crate) fn with_email(mut self, email: impl Into<String>) -> Credential {
        self.email = email.into();
        self
    }

    /// The email address the user is named by, unless none is given.
    pub(crate) fn known_email(&self) -> Option<&str> {
        Some(self.email.as_str()).filter(|e| !e.is_empty())
    }

    /// The token serial, unless it is unknown.
    pub(crate) fn known_token(&self) -> Option<&str> {
        Some(self.token.as_str()).filter(|t| !t.is_empty())
    }

    /// The user id, unless it is unknown.
    pub(crate) fn known_user(&self) -> Option<&str> {
        Some(self.user.as_str()).filter(|u| !u.is_empty())
    }

    /// Whether every field is known: what a DELETE needs.
    pub(crate) fn is_complete(&self) -> bool {
        !self.token.is_empty() && !self.device.is_empty() && !self.user.is_empty()
    }
}

/// Whether two user ids name the same user: the tenant compares them ignoring case.
pub(crate) fn same_user(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// An email address in the form addresses are compared in: lowercased (addresses name the
/// same mailbox whatever their case, in practice if not in RFC 5321).
pub(crate) fn email_key(email: &str) -> String {
    email.to_lowercase()
}

/// A field of a credential, by the name the API, the input header and the report give it.
// The discriminants index per-field arrays (`input::header` maps columns with them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    Token = 0,
    Device = 1,
    User = 2,
    Email = 3,
}

impl Field {
    /// The field's name in the API, the input header and the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::Token => "tokenSerialNumber",
            Field::Device => "deviceSerialNumber",
            Field::User => "userId",
            Field::Email => "email",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_unknown() {
        let row = Credential::new("", "0140", "");
        assert_eq!((row.known_token(), row.known_user()), (None, None));
        assert!(!row.is_complete());
        let full = Credential::new("000123", "0140", "U");
        assert_eq!(full.known_token(), Some("000123"));
        assert!(full.is_complete());
    }

    #[test]
    fn user_ids_compare_ignoring_case() {
        assert!(same_user(
            "87927fb7-e185-4c33-c7e3-8e077675973c",
            "87927FB7-E185-4C33-C7E3-8E077675973C"
        ));
        assert!(!same_user("a", "b"));
    }
}
