//! The API's JSON bodies as the simulator reads and writes them, with the API's field names
//! spelled out (docs/design.md#the-api-the-tool-relies-on). Deliberately not shared with the
//! client: a field-name mistake on either side then fails the tests instead of cancelling out.

use serde::{Deserialize, Serialize};

/// One stored DS100 OTP credential; also the body of `DELETE …/ds100/delete/otp`. Unknown
/// fields are ignored, as the API does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Credential {
    #[serde(rename = "tokenSerialNumber")]
    pub token_serial_number: String,
    #[serde(rename = "deviceSerialNumber")]
    pub device_serial_number: String,
    #[serde(rename = "userId")]
    pub user_id: String,
}

/// The body of `POST …/ds100/lookup`.
#[derive(Debug, Deserialize)]
pub(crate) struct LookupRequest {
    #[serde(rename = "deviceSerialNumber")]
    pub(crate) device_serial_number: String,
}

/// One record of a lookup answer, every field the API's example shows; the two it shows as
/// `null` are written as `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRecord {
    pub id: String,
    pub name: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "deviceType")]
    pub device_type: String,
    #[serde(rename = "registeredDate")]
    pub registered_date: String,
    #[serde(rename = "tokenSerialNumber")]
    pub token_serial_number: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    #[serde(rename = "tokenState")]
    pub token_state: String,
    #[serde(rename = "expiryDate")]
    pub expiry_date: Option<String>,
    #[serde(rename = "tokenStatus")]
    pub token_status: String,
    #[serde(rename = "tokenStatusReason")]
    pub token_status_reason: Option<String>,
    #[serde(rename = "assignedAt")]
    pub assigned_at: String,
    #[serde(rename = "assignedBy")]
    pub assigned_by: String,
}

/// The body of `PATCH …/disable/otp` and `…/enable/otp`: the device and the user, no token.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchRequest {
    #[serde(rename = "deviceSerialNumber")]
    pub(crate) device_serial_number: String,
    #[serde(rename = "userId")]
    pub(crate) user_id: String,
}

/// One credential of a PATCH answer, as the API lists what it changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRecord {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "tokenSerialNumber")]
    pub token_serial_number: String,
    #[serde(rename = "tokenStatus")]
    pub token_status: String,
    #[serde(rename = "tokenStatusChangedAt")]
    pub token_status_changed_at: String,
    #[serde(rename = "tokenStatusChangedBy")]
    pub token_status_changed_by: String,
    #[serde(rename = "deviceSerialNumber")]
    pub device_serial_number: String,
}

/// The body of `POST …/users/lookup`.
#[derive(Debug, Deserialize)]
pub(crate) struct UserLookupRequest {
    pub(crate) email: String,
}

/// The answer to a user lookup: the user, with the fields the API documents and two more it
/// carries (a client must ignore what it does not read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    #[serde(rename = "firstName")]
    pub first_name: String,
    #[serde(rename = "lastName")]
    pub last_name: String,
    #[serde(rename = "userStatus")]
    pub user_status: String,
    #[serde(rename = "identitySource")]
    pub identity_source: String,
    #[serde(rename = "lastSyncTime")]
    pub last_sync_time: Option<String>,
}

/// The JSON body of every error answer.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) status: u16,
    pub(crate) error: &'a str,
    pub(crate) message: &'a str,
}

/// The answer of `POST /oauth/token` that issues a token (RFC 6749 §5.1).
#[derive(Serialize)]
pub(crate) struct TokenAnswer<'a> {
    pub(crate) access_token: &'a str,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    pub(crate) scope: &'a str,
}

/// The answer of `POST /oauth/token` that refuses (RFC 6749 §5.2).
#[derive(Serialize)]
pub(crate) struct OAuthErrorBody<'a> {
    pub(crate) error: &'a str,
    pub(crate) error_description: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are the API's, written out here once more: a rename on the struct fails this.
    #[test]
    fn field_names_are_the_apis() {
        let cred = Credential {
            token_serial_number: "t".into(),
            device_serial_number: "d".into(),
            user_id: "u".into(),
        };
        assert_eq!(
            serde_json::to_value(&cred).ok(),
            Some(serde_json::json!({
                "tokenSerialNumber": "t", "deviceSerialNumber": "d", "userId": "u"
            }))
        );
        let asked: Option<LookupRequest> =
            serde_json::from_str(r#"{"deviceSerialNumber":"d","extra":1}"#).ok();
        assert_eq!(asked.map(|r| r.device_serial_number).as_deref(), Some("d"));
        let patch: Option<PatchRequest> =
            serde_json::from_str(r#"{"deviceSerialNumber":"d","userId":"u"}"#).ok();
        assert_eq!(
            patch.map(|r| (r.device_serial_number, r.user_id)),
            Some(("d".to_string(), "u".to_string()))
        );
        let record = PatchRecord {
            user_id: "u".into(),
            token_serial_number: "t".into(),
            token_status: "Disabled".into(),
            token_status_changed_at: "a".into(),
            token_status_changed_by: "b".into(),
            device_serial_number: "d".into(),
        };
        assert_eq!(
            serde_json::to_value(&record).ok(),
            Some(serde_json::json!({
                "userId": "u", "tokenSerialNumber": "t", "tokenStatus": "Disabled",
                "tokenStatusChangedAt": "a", "tokenStatusChangedBy": "b",
                "deviceSerialNumber": "d"
            }))
        );
    }

    #[test]
    fn oauth_field_names_are_rfc_6749s() {
        let issued = TokenAnswer {
            access_token: "t",
            token_type: "Bearer",
            expires_in: 5,
            scope: "a b",
        };
        assert_eq!(
            serde_json::to_value(&issued).ok(),
            Some(serde_json::json!({
                "access_token": "t", "token_type": "Bearer", "expires_in": 5, "scope": "a b"
            }))
        );
        let refused = OAuthErrorBody {
            error: "invalid_client",
            error_description: "why",
        };
        assert_eq!(
            serde_json::to_value(&refused).ok(),
            Some(serde_json::json!({"error": "invalid_client", "error_description": "why"}))
        );
    }

    #[test]
    fn user_lookup_field_names_are_the_apis() {
        let asked: Option<UserLookupRequest> =
            serde_json::from_str(r#"{"email":"a@b.c","searchUnsynched":true}"#).ok();
        assert_eq!(asked.map(|r| r.email).as_deref(), Some("a@b.c"));
        let user = UserRecord {
            id: "u".into(),
            email: "a@b.c".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            user_status: "Enabled".into(),
            identity_source: "s".into(),
            last_sync_time: None,
        };
        assert_eq!(
            serde_json::to_value(&user).ok(),
            Some(serde_json::json!({
                "id": "u", "email": "a@b.c", "firstName": "A", "lastName": "B",
                "userStatus": "Enabled", "identitySource": "s", "lastSyncTime": null
            }))
        );
    }
}
