//! Reading the answer to a user lookup (`POST …/users/lookup {email}`): the user an address
//! names, parsed leniently — unknown fields ignored, any field null or a number — but never
//! guessed at: a body that is not a user (or a list of users) is an error, never "no such user"
//! (docs/design.md#people-by-email).

use serde_json::{Map, Value};

use super::exchange::excerpt;

/// How many characters of a name or status the report quotes.
const SHOWN_CHARS: usize = 80;

/// One user of a user lookup's answer. `id` is the userId the DS100 calls take; the rest is
/// for people to read (the report's note) and for the check that the answer is about the
/// address asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) status: Option<String>,
}

impl User {
    /// "Ann Leaver": first and last name as the tenant spells them, one printable line; `None`
    /// when the answer gave neither.
    pub(crate) fn name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| excerpt(&parts.join(" "), SHOWN_CHARS))
    }

    /// How the report names the user: `Ann Leaver (userId …, userStatus Disabled)`.
    pub(crate) fn describe(&self) -> String {
        let name = self
            .name()
            .unwrap_or_else(|| "a user without a name".to_string());
        let status = match self.status.as_deref() {
            Some(s) if !s.is_empty() => format!(", userStatus {}", excerpt(s, SHOWN_CHARS)),
            _ => String::new(),
        };
        format!("{name} (userId {}{status})", self.id)
    }
}

/// The users a 200 answer to a user lookup lists: one object (the documented answer), or a
/// JSON array of them, or an object holding exactly one such array. Anything else is an error
/// that says what came. A record without an `id` is an error too: it names nobody the DS100
/// calls can take.
pub(crate) fn parse_users(body: &[u8]) -> Result<Vec<User>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "body is not JSON ({e}): {}",
            excerpt(&String::from_utf8_lossy(body), 80)
        )
    })?;
    let items = match value {
        Value::Object(map) if has_id(&map) => vec![Value::Object(map)],
        Value::Array(items) => items,
        Value::Object(map) => {
            let mut arrays = map
                .into_iter()
                .filter_map(|(_, v)| match v {
                    Value::Array(items) => Some(items),
                    _ => None,
                })
                .collect::<Vec<_>>();
            match arrays.pop() {
                Some(items) if arrays.is_empty() => items,
                _ => {
                    return Err(
                        "expected a user (a JSON object with an id), got an object without one"
                            .to_string(),
                    );
                }
            }
        }
        other => {
            return Err(format!(
                "expected a user (a JSON object with an id), got {}",
                excerpt(&other.to_string(), 80)
            ));
        }
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(map) => user(&map),
            other => Err(format!(
                "expected users (JSON objects), got {}",
                excerpt(&other.to_string(), 80)
            )),
        })
        .collect()
}

fn has_id(map: &Map<String, Value>) -> bool {
    map.contains_key("id") || map.contains_key("userId")
}

fn user(map: &Map<String, Value>) -> Result<User, String> {
    let get = |k: &str| match map.get(k) {
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    // `id` is the documented field; `userId` is read when it is missing, as the DS100 records
    // call it. Either is checked against the device's records before anything is deleted.
    let id = get("id")
        .filter(|v| !v.is_empty())
        .or_else(|| get("userId").filter(|v| !v.is_empty()))
        .ok_or_else(|| "a user in the answer has no id".to_string())?;
    Ok(User {
        id,
        email: get("email").or_else(|| get("emailAddress")),
        first_name: get("firstName"),
        last_name: get("lastName"),
        status: get("userStatus"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANN: &str = r#"{"id":"26c1e3d6-b31c-803e-cf7f-bdbe7687a72b","email":"ann.leaver@acme.com",
        "firstName":"Ann","lastName":"Leaver","userStatus":"Enabled","lastSyncTime":null,
        "identitySource":{"name":"AD"}}"#;

    #[test]
    fn the_documented_answer_is_one_user() {
        let users = parse_users(ANN.as_bytes()).unwrap();
        assert_eq!(users.len(), 1);
        let u = &users[0];
        assert_eq!(u.id, "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b");
        assert_eq!(u.email.as_deref(), Some("ann.leaver@acme.com"));
        assert_eq!(u.name().as_deref(), Some("Ann Leaver"));
        assert_eq!(
            u.describe(),
            "Ann Leaver (userId 26c1e3d6-b31c-803e-cf7f-bdbe7687a72b, userStatus Enabled)"
        );
    }

    #[test]
    fn lenient_but_never_a_guess() {
        // Lists, envelopes, numbers, nulls.
        assert_eq!(parse_users(format!("[{ANN}]").as_bytes()).unwrap().len(), 1);
        assert_eq!(
            parse_users(format!(r#"{{"users":[{ANN},{ANN}]}}"#).as_bytes())
                .unwrap()
                .len(),
            2
        );
        assert!(parse_users(b"[]").unwrap().is_empty());
        let u = &parse_users(br#"{"id":42,"firstName":null,"lastName":"\nX\r"}"#).unwrap()[0];
        assert_eq!((u.id.as_str(), u.name().as_deref()), ("42", Some("X")));
        let u = &parse_users(br#"{"userId":"u-1"}"#).unwrap()[0];
        assert_eq!(u.id, "u-1");
        assert_eq!(u.describe(), "a user without a name (userId u-1)");
        // Not a user: an error, never "no such user".
        for bad in [
            &b"null"[..],
            b"42",
            b"\"x\"",
            b"{}",
            br#"{"error":"boom"}"#,
            br#"{"a":[],"b":[]}"#,
            br#"{"id":""}"#,
            br#"[{"firstName":"Ann"}]"#,
            b"[1]",
            b"<html>",
            b"",
        ] {
            assert!(
                parse_users(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
