//! Wire types of the DS100 endpoints (docs/design.md#the-api-the-tool-relies-on): the delete
//! body, the lookup body and answer, the user lookup's body, under the API's field names.

use serde::{Deserialize, Serialize};

use crate::credential::Credential;

/// Body of `DELETE …/ds100/delete/otp`: one credential under the API's field names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequest {
    pub token_serial_number: String,
    pub device_serial_number: String,
    pub user_id: String,
}

impl From<&Credential> for DeleteRequest {
    fn from(cred: &Credential) -> DeleteRequest {
        DeleteRequest {
            token_serial_number: cred.token.clone(),
            device_serial_number: cred.device.clone(),
            user_id: cred.user.clone(),
        }
    }
}

/// Body of `POST …/ds100/lookup`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupRequest {
    pub device_serial_number: String,
}

/// Body of `POST …/users/lookup`: the address to find the user of.
#[derive(Clone, Debug, Serialize)]
pub struct UserLookupRequest {
    pub email: String,
}

/// One record of a lookup answer. Parsed leniently: every field may be absent or null, unknown
/// fields are ignored, timestamps are kept as the server wrote them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LookupRecord {
    pub id: Option<String>,
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub device_type: Option<String>,
    pub registered_date: Option<String>,
    pub token_serial_number: Option<String>,
    pub updated_at: Option<String>,
    pub token_state: Option<String>,
    pub expiry_date: Option<String>,
    pub token_status: Option<String>,
    pub token_status_reason: Option<String>,
    pub assigned_at: Option<String>,
    pub assigned_by: Option<String>,
}

impl LookupRecord {
    /// The credential this record lists on `device` (a record does not repeat the device it
    /// was looked up by). A blank or missing field stays empty: unknown.
    pub(crate) fn credential(&self, device: &str) -> Credential {
        let field = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_string();
        Credential::new(
            field(&self.token_serial_number),
            device,
            field(&self.user_id),
        )
    }
}
