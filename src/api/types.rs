//! Wire types of the DS100 endpoints (API.md): the delete body, the lookup body and answer.

use serde::{Deserialize, Serialize};

/// One DS100 OTP credential as the delete call names it. Field names are the API's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    pub token_serial_number: String,
    pub device_serial_number: String,
    pub user_id: String,
}

/// Body of `POST …/ds100/lookup`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupRequest {
    pub device_serial_number: String,
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
