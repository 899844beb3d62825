//! The API endpoints the simulator serves — the DS100 delete and lookup, and the user lookup by
//! email — each one's method, path and name (the name is what `--fault …,on=NAME` says).

use std::fmt;
use std::str::FromStr;

pub const DELETE_PATH: &str = "/AdminInterface/restapi/v1/ds100/delete/otp";
pub const LOOKUP_PATH: &str = "/AdminInterface/restapi/v1/ds100/lookup";
pub const DISABLE_PATH: &str = "/AdminInterface/restapi/v1/ds100/disable/otp";
pub const ENABLE_PATH: &str = "/AdminInterface/restapi/v1/ds100/enable/otp";
pub const USERS_LOOKUP_PATH: &str = "/AdminInterface/restapi/v1/users/lookup";

/// One API endpoint; `routes` answers each at its path, `ops` does its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Delete,
    Lookup,
    /// `PATCH …/disable/otp`: the reversible step.
    Disable,
    /// `PATCH …/enable/otp`: its undo.
    Enable,
    /// `POST …/users/lookup {email}`: a user by address.
    Users,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 5] = [
        Endpoint::Delete,
        Endpoint::Lookup,
        Endpoint::Disable,
        Endpoint::Enable,
        Endpoint::Users,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Delete => DELETE_PATH,
            Endpoint::Lookup => LOOKUP_PATH,
            Endpoint::Disable => DISABLE_PATH,
            Endpoint::Enable => ENABLE_PATH,
            Endpoint::Users => USERS_LOOKUP_PATH,
        }
    }

    /// The one HTTP method the endpoint takes.
    pub(crate) fn method(self) -> &'static str {
        match self {
            Endpoint::Delete => "DELETE",
            Endpoint::Lookup | Endpoint::Users => "POST",
            Endpoint::Disable | Endpoint::Enable => "PATCH",
        }
    }

    /// Whether it is one of the PATCH endpoints (disable, enable).
    pub(crate) fn is_patch(self) -> bool {
        matches!(self, Endpoint::Disable | Endpoint::Enable)
    }

    /// The OAuth scope an access token needs for this endpoint. RSA documents no scope of its
    /// own for enable/disable: they need the write scope it documents, `…delete`.
    pub(crate) fn scope(self) -> &'static str {
        match self {
            Endpoint::Delete | Endpoint::Disable | Endpoint::Enable => {
                "rsa.authenticator.ds100.delete"
            }
            Endpoint::Lookup | Endpoint::Users => "rsa.authenticator.ds100.read",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Endpoint::Delete => "delete",
            Endpoint::Lookup => "lookup",
            Endpoint::Disable => "disable",
            Endpoint::Enable => "enable",
            Endpoint::Users => "users",
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "users-lookup" || s == "user-lookup" {
            return Ok(Endpoint::Users);
        }
        Endpoint::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown endpoint '{s}': use on=delete, on=lookup, on=disable, on=enable or \
                     on=users"
                )
            })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for endpoint in Endpoint::ALL {
            assert_eq!(endpoint.to_string().parse(), Ok(endpoint));
        }
        assert_eq!(" Delete ".parse(), Ok(Endpoint::Delete));
        assert_eq!("disable".parse(), Ok(Endpoint::Disable));
        assert_eq!("ENABLE".parse(), Ok(Endpoint::Enable));
        assert_eq!("users-lookup".parse(), Ok(Endpoint::Users));
        assert!("patch".parse::<Endpoint>().is_err());
    }
}
