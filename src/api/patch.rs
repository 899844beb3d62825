//! The reversible step (docs/design.md#disable-and-enable): `PATCH …/ds100/disable/otp` and
//! `PATCH …/ds100/enable/otp`, their body and their answer, an array of the credentials the
//! tenant changed, read leniently like a lookup answer.

use serde::Serialize;

use super::exchange::excerpt;
use crate::credential::Credential;

/// The state a PATCH puts a credential in, as the API's `tokenStatus` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TokenState {
    Disabled,
    Enabled,
}

impl TokenState {
    /// The API's `tokenStatus` value.
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            TokenState::Disabled => "Disabled",
            TokenState::Enabled => "Enabled",
        }
    }

    /// The command and the path's verb: `disable`, `enable`.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            TokenState::Disabled => "disable",
            TokenState::Enabled => "enable",
        }
    }

    /// Past tense, lowercase: `disabled`, `enabled`.
    pub(crate) fn done(self) -> &'static str {
        match self {
            TokenState::Disabled => "disabled",
            TokenState::Enabled => "enabled",
        }
    }

    /// What the report's messages call the request: `PATCH …/disable/otp`.
    pub(crate) fn request_name(self) -> &'static str {
        match self {
            TokenState::Disabled => "PATCH disable/otp",
            TokenState::Enabled => "PATCH enable/otp",
        }
    }

    /// Whether a `tokenStatus` value names this state (case and padding ignored).
    pub(crate) fn is(self, token_status: &str) -> bool {
        token_status.trim().eq_ignore_ascii_case(self.api_name())
    }
}

/// Body of both PATCH calls: the device and the user; the API takes no token serial here, which
/// is why every row is looked up first (docs/design.md#disable-and-enable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PatchRequest {
    pub(crate) device_serial_number: String,
    pub(crate) user_id: String,
}

impl From<&Credential> for PatchRequest {
    fn from(cred: &Credential) -> PatchRequest {
        PatchRequest {
            device_serial_number: cred.device.clone(),
            user_id: cred.user.clone(),
        }
    }
}

/// One credential of a PATCH answer. Every field may be missing or null (blank counts as
/// missing); unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PatchRecord {
    pub(crate) user_id: Option<String>,
    pub(crate) token_serial_number: Option<String>,
    pub(crate) token_status: Option<String>,
    pub(crate) token_status_changed_at: Option<String>,
    pub(crate) token_status_changed_by: Option<String>,
    pub(crate) device_serial_number: Option<String>,
}

/// Lenient parse of a PATCH answer: a JSON array of records, or one record not wrapped in an
/// array. Anything else (an envelope, a string, `null`, not JSON) is refused: guessing at it
/// could read "changed" where nothing is known.
pub(crate) fn parse_patch(body: &[u8]) -> Result<Vec<PatchRecord>, String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the body is empty, so nothing says which credential changed".to_string());
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not JSON ({e}): {}",
            excerpt(&String::from_utf8_lossy(body), 80)
        )
    })?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map)
            if ["tokenSerialNumber", "userId", "deviceSerialNumber"]
                .iter()
                .any(|k| map.contains_key(*k)) =>
        {
            vec![serde_json::Value::Object(map)]
        }
        other => {
            return Err(format!(
                "expected a JSON array of credentials, got {}",
                excerpt(&other.to_string(), 80)
            ));
        }
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::Object(map) => {
                let get = |k: &str| match map.get(k) {
                    Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                        Some(s.trim().to_string())
                    }
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                Ok(PatchRecord {
                    user_id: get("userId"),
                    token_serial_number: get("tokenSerialNumber"),
                    token_status: get("tokenStatus"),
                    token_status_changed_at: get("tokenStatusChangedAt"),
                    token_status_changed_by: get("tokenStatusChangedBy"),
                    device_serial_number: get("deviceSerialNumber"),
                })
            }
            other => Err(format!(
                "an item of the array is not a credential: {}",
                excerpt(&other.to_string(), 60)
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_device_and_user_only() {
        let cred = Credential::new("014010008038", "140100080", "u-1");
        let json = serde_json::to_string(&PatchRequest::from(&cred)).unwrap();
        assert_eq!(json, r#"{"deviceSerialNumber":"140100080","userId":"u-1"}"#);
    }

    #[test]
    fn answers_are_read_leniently_but_never_guessed_at() {
        let recs = parse_patch(
            br#"[{"userId":"u","tokenSerialNumber":"014010008038","tokenStatus":"Disabled",
                 "tokenStatusChangedAt":"2024-01-01T00:00:00Z","tokenStatusChangedBy":null,
                 "deviceSerialNumber":"140100080","extra":[1]},
                {"tokenSerialNumber":14010008039,"userId":" "}]"#,
        )
        .unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].token_status.as_deref(), Some("Disabled"));
        assert_eq!(recs[0].token_status_changed_by, None);
        assert_eq!(recs[1].token_serial_number.as_deref(), Some("14010008039"));
        assert_eq!(recs[1].user_id, None);
        assert_eq!(
            parse_patch(br#"{"tokenSerialNumber":"1"}"#).unwrap().len(),
            1
        );
        assert!(parse_patch(b"[]").unwrap().is_empty());
        for bad in [
            &b""[..],
            b"  \n",
            b"null",
            b"\"ok\"",
            br#"{"data":[{"tokenSerialNumber":"1"}]}"#,
            b"<html>",
            b"[1]",
            b"[{\"a\":",
        ] {
            assert!(
                parse_patch(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn states() {
        assert!(TokenState::Disabled.is(" disabled "));
        assert!(!TokenState::Disabled.is("Enabled"));
        assert_eq!(TokenState::Enabled.verb(), "enable");
    }
}
