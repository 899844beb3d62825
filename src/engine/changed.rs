//! Reading the answer to a PATCH against the credential the row named: did the tenant change
//! exactly that credential, into the wanted state (docs/design.md#disable-and-enable)? Pure
//! functions; the worker does the I/O.
//!
//! The PATCH body names only the device and the user, so the tenant picks the credential. An
//! answer naming another token, user or device means it changed a credential the input does
//! not name: the very thing the tool exists to prevent, so the run stops.

use crate::api::patch::{PatchRecord, TokenState};
use crate::credential::{Credential, same_user};

/// What a 200 answer to a PATCH says about the row's credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PatchVerdict {
    /// The answer names the row's credential and nothing else, in the wanted state. The note
    /// says what was not stated (`tokenStatus` missing), empty otherwise.
    Done { note: String },
    /// The answer names a credential the row does not: another token, user or device.
    Another(String),
    /// Nothing in the answer shows the row's credential in the wanted state.
    NotDone(String),
}

/// A credential of the answer for messages: `token/device/user`, `?` for a field it left out.
fn show(r: &PatchRecord) -> String {
    let f = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_string());
    format!(
        "{}/{}/{}",
        f(&r.token_serial_number),
        f(&r.device_serial_number),
        f(&r.user_id)
    )
}

/// Judges the records a PATCH `to` answered with against `sent`, the credential it was meant
/// for (all three fields known: the row was looked up first). A field a record leaves out
/// rules nothing in or out; one it states must be the row's.
pub(crate) fn judge_patch(
    sent: &Credential,
    to: TokenState,
    records: &[PatchRecord],
) -> PatchVerdict {
    let what = to.request_name();
    if records.is_empty() {
        return PatchVerdict::NotDone(format!(
            "{what} answered 200 with an empty list: it names no credential, so nothing says \
             token {} was {}; check it on the tenant",
            sent.token,
            to.done()
        ));
    }
    let another = |r: &PatchRecord| {
        r.token_serial_number
            .as_deref()
            .is_some_and(|t| t != sent.token)
            || r.user_id
                .as_deref()
                .is_some_and(|u| !same_user(u, &sent.user))
            || r.device_serial_number
                .as_deref()
                .is_some_and(|d| d != sent.device)
    };
    let others: Vec<&PatchRecord> = records.iter().filter(|r| another(r)).collect();
    let ours: Vec<&PatchRecord> = records
        .iter()
        .filter(|r| !another(r) && r.token_serial_number.is_some())
        .collect();
    if !others.is_empty() {
        let listed = others
            .iter()
            .take(5)
            .map(|r| show(r))
            .collect::<Vec<_>>()
            .join(", ");
        let more = if others.len() > 5 {
            format!(" and {} more", others.len() - 5)
        } else {
            String::new()
        };
        let also = if ours.is_empty() {
            String::new()
        } else {
            format!(" (and the row's token {})", sent.token)
        };
        return PatchVerdict::Another(format!(
            "{what} for device {} and user {} was answered naming {listed}{more} \
             (tokenSerialNumber/deviceSerialNumber/userId){also}, not only the row's token {}: \
             the tenant may have {} a credential the row does not name. Check those credentials \
             on the tenant before anything else; the run stopped",
            sent.device,
            sent.user,
            sent.token,
            to.done()
        ));
    }
    if ours.is_empty() {
        return PatchVerdict::NotDone(format!(
            "{what} answered 200 without a tokenSerialNumber, so nothing says token {} was {}; \
             check it on the tenant",
            sent.token,
            to.done()
        ));
    }
    if let Some(r) = ours
        .iter()
        .find(|r| r.token_status.as_deref().is_some_and(|s| !to.is(s)))
    {
        return PatchVerdict::NotDone(format!(
            "{what} answered 200 but lists token {} with tokenStatus {}, not {}; it was not {}",
            sent.token,
            r.token_status.as_deref().unwrap_or("?"),
            to.api_name(),
            to.done()
        ));
    }
    let note = if ours.iter().all(|r| r.token_status.is_none()) {
        format!(
            "the answer names token {} but states no tokenStatus",
            sent.token
        )
    } else {
        String::new()
    };
    PatchVerdict::Done { note }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "87927fb7-e185-4c33-c7e3-8e077675973c";
    const U2: &str = "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b";

    fn sent() -> Credential {
        Credential::new("014010008038", "140100080", U1)
    }

    fn rec(
        token: Option<&str>,
        device: Option<&str>,
        user: Option<&str>,
        status: Option<&str>,
    ) -> PatchRecord {
        PatchRecord {
            token_serial_number: token.map(str::to_string),
            device_serial_number: device.map(str::to_string),
            user_id: user.map(str::to_string),
            token_status: status.map(str::to_string),
            ..PatchRecord::default()
        }
    }

    fn judge(records: &[PatchRecord]) -> PatchVerdict {
        judge_patch(&sent(), TokenState::Disabled, records)
    }

    #[test]
    fn the_rows_credential_in_the_wanted_state_is_done() {
        let full = rec(
            Some("014010008038"),
            Some("140100080"),
            Some(U1),
            Some("Disabled"),
        );
        assert_eq!(
            judge(std::slice::from_ref(&full)),
            PatchVerdict::Done {
                note: String::new()
            }
        );
        // The user id in another case, fields left out, listed twice: still the row's.
        let upper = U1.to_uppercase();
        let sparse = rec(Some("014010008038"), None, Some(&upper), Some("disabled"));
        assert_eq!(
            judge(&[sparse, full]),
            PatchVerdict::Done {
                note: String::new()
            }
        );
        match judge(&[rec(Some("014010008038"), None, None, None)]) {
            PatchVerdict::Done { note } => assert!(note.contains("no tokenStatus"), "{note}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn another_token_user_or_device_is_another_credential() {
        for other in [
            rec(
                Some("014010008039"),
                Some("140100080"),
                Some(U1),
                Some("Disabled"),
            ),
            rec(
                Some("014010008038"),
                Some("140100080"),
                Some(U2),
                Some("Disabled"),
            ),
            rec(
                Some("014010008038"),
                Some("140100081"),
                Some(U1),
                Some("Disabled"),
            ),
            // Lost leading zeros are another token, never "close enough".
            rec(Some("14010008038"), None, None, Some("Disabled")),
        ] {
            match judge(std::slice::from_ref(&other)) {
                PatchVerdict::Another(why) => {
                    assert!(
                        why.contains("does not name") && why.contains("stopped"),
                        "{why}"
                    )
                }
                v => panic!("{other:?}: {v:?}"),
            }
        }
        // Several credentials, none the row's; and the row's beside another one.
        let ours = rec(Some("014010008038"), None, Some(U1), Some("Disabled"));
        let theirs = rec(Some("014010008039"), None, Some(U1), Some("Disabled"));
        let third = rec(Some("014010008040"), None, Some(U1), Some("Disabled"));
        assert!(matches!(
            judge(&[theirs.clone(), third]),
            PatchVerdict::Another(_)
        ));
        match judge(&[ours, theirs]) {
            PatchVerdict::Another(why) => assert!(why.contains("and the row's token"), "{why}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn nothing_shown_in_the_wanted_state_is_not_done() {
        assert!(matches!(judge(&[]), PatchVerdict::NotDone(_)));
        match judge(&[rec(None, Some("140100080"), Some(U1), Some("Disabled"))]) {
            PatchVerdict::NotDone(why) => {
                assert!(why.contains("without a tokenSerialNumber"), "{why}")
            }
            v => panic!("{v:?}"),
        }
        match judge(&[rec(Some("014010008038"), None, None, Some("Enabled"))]) {
            PatchVerdict::NotDone(why) => assert!(why.contains("tokenStatus Enabled"), "{why}"),
            v => panic!("{v:?}"),
        }
        let enabled = judge_patch(
            &sent(),
            TokenState::Enabled,
            &[rec(Some("014010008038"), None, None, Some("Enabled"))],
        );
        assert_eq!(
            enabled,
            PatchVerdict::Done {
                note: String::new()
            }
        );
    }
}
