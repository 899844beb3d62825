//! Reading a lookup answer: the JSON array of records the API sends, parsed leniently: unknown
//! fields ignored, any field null or of another type (docs/design.md#the-api-the-tool-relies-on).

use super::exchange::excerpt;
use super::types::LookupRecord;

/// Lenient parse of a lookup answer: an array of records (a lone object is taken as one).
pub(crate) fn parse_lookup(body: &[u8]) -> Result<Vec<LookupRecord>, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "body is not JSON ({e}): {}",
            excerpt(&String::from_utf8_lossy(body), 80)
        )
    })?;
    // Anything but an array is a guess, and a wrong guess reads "no credential" where there
    // is one: only unambiguous shapes are taken.
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) => {
            const RECORD_KEYS: [&str; 4] =
                ["tokenSerialNumber", "userId", "deviceSerialNumber", "id"];
            if RECORD_KEYS.iter().any(|k| map.contains_key(*k)) {
                vec![serde_json::Value::Object(map)] // one record, not wrapped in an array
            } else {
                // An envelope such as {"data": [...]}: exactly one array, of objects.
                let mut arrays = map
                    .into_iter()
                    .filter_map(|(_, v)| match v {
                        serde_json::Value::Array(items) => Some(items),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                match arrays.pop() {
                    Some(items) if arrays.is_empty() && items.iter().all(|i| i.is_object()) => {
                        items
                    }
                    _ => {
                        return Err(
                            "expected a JSON array of records, got an object that does not \
                             hold exactly one array of records"
                                .to_string(),
                        );
                    }
                }
            }
        }
        other => return Err(format!("expected a JSON array of records, got {other}")),
    };
    // A record whose fields have unexpected types is kept as far as it parses: a non-string
    // field becomes None rather than failing the whole row.
    Ok(items.into_iter().map(lenient_record).collect())
}

fn lenient_record(item: serde_json::Value) -> LookupRecord {
    let serde_json::Value::Object(map) = item else {
        return LookupRecord::default();
    };
    let get = |k: &str| match map.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    LookupRecord {
        id: get("id"),
        name: get("name"),
        user_id: get("userId"),
        device_type: get("deviceType"),
        registered_date: get("registeredDate"),
        token_serial_number: get("tokenSerialNumber"),
        updated_at: get("updatedAt"),
        token_state: get("tokenState"),
        expiry_date: get("expiryDate"),
        token_status: get("tokenStatus"),
        token_status_reason: get("tokenStatusReason"),
        assigned_at: get("assignedAt"),
        assigned_by: get("assignedBy"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_bodies_are_parsed_leniently() {
        let body = br#"[{"tokenSerialNumber":"014010008035","userId":"26c1e3d6-b31c-803e-cf7f-bdbe7687a72b",
            "expiryDate":null,"registeredDate":"yesterday-ish","extra":{"x":1}},
            {"tokenSerialNumber":14010008036,"userId":null}]"#;
        let recs = parse_lookup(body).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].registered_date.as_deref(), Some("yesterday-ish"));
        assert_eq!(recs[1].token_serial_number.as_deref(), Some("14010008036"));
        assert_eq!(recs[1].user_id, None);
        assert_eq!(
            parse_lookup(b"{\"tokenSerialNumber\":\"1\"}")
                .unwrap()
                .len(),
            1
        );
        // `null` is not "no credential": that is a 404, or an empty array.
        assert!(parse_lookup(b"null").is_err());
        assert_eq!(parse_lookup(b"[]").unwrap().len(), 0);
        // Envelopes with more than one array cannot be read without guessing.
        assert!(parse_lookup(br#"{"errors":[],"records":[{"tokenSerialNumber":"1"}]}"#).is_err());
        assert!(parse_lookup(br#"{"items":[1,2]}"#).is_err());
        let wrapped =
            br#"{"data":[{"tokenSerialNumber":"1","userId":"u"},{"tokenSerialNumber":"2"}]}"#;
        assert_eq!(parse_lookup(wrapped).unwrap().len(), 2);
        assert!(parse_lookup(br#"{"error":"boom"}"#).is_err());
        assert!(
            parse_lookup(b"<html>oops")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(parse_lookup(b"[{\"a\":").is_err());
        assert!(parse_lookup(b"42").is_err());
    }
}
