//! Matching a row against the credentials a device lookup returned: resolve missing fields,
//! explain a 404, audit (docs/design.md#what-an-answer-means). Pure functions; the worker does
//! the I/O.

use crate::api::types::LookupRecord;
use crate::credential::{Credential, same_user};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Exactly one credential matches; these are its exact values, every field known.
    Match(Credential),
    /// Nothing of this row is on the device.
    Absent(String),
    /// The device holds a credential for this token with another user, or for this user with
    /// another token: the row's data is wrong and the credential may still work.
    Mismatch(String),
    /// Several credentials fit, or one fits but the lookup left out a field needed to be sure.
    Ambiguous(String),
}

/// The credentials a lookup of `device` lists. A record may lack any field (the API allows
/// null; blank counts as missing), and a record that might be the row's credential is never
/// taken as proof that the credential is gone. The same credential listed twice is one
/// credential, not two candidates.
pub(crate) fn held(device: &str, records: &[LookupRecord]) -> Vec<Credential> {
    let mut held: Vec<Credential> = Vec::with_capacity(records.len());
    for record in records {
        let cred = record.credential(device);
        let listed = held
            .iter()
            .any(|h| h.token == cred.token && same_user(&h.user, &cred.user));
        if !listed {
            held.push(cred);
        }
    }
    held
}

/// A field for a message: `?` when the lookup left it out.
fn show(v: &str) -> &str {
    if v.is_empty() { "?" } else { v }
}

/// Classifies a row (`want`: empty fields are to be resolved) against everything its device
/// holds.
pub(crate) fn match_row(want: &Credential, held: &[Credential]) -> Verdict {
    // A record is ruled out only by a field it states and that differs from the row.
    let ruled_out = |r: &Credential| {
        want.known_token()
            .zip(r.known_token())
            .is_some_and(|(w, t)| w != t)
            || want
                .known_user()
                .zip(r.known_user())
                .is_some_and(|(w, u)| !same_user(u, w))
    };
    let candidates: Vec<&Credential> = held.iter().filter(|r| !ruled_out(r)).collect();
    match candidates.as_slice() {
        [] => {}
        [one] if one.is_complete() => return Verdict::Match((*one).clone()),
        [one] => {
            return Verdict::Ambiguous(format!(
                "device {} holds a credential that may be this row's (tokenSerialNumber/userId {}/{}), \
                 but the lookup did not give all its fields; nothing was changed",
                want.device,
                show(&one.token),
                show(&one.user)
            ));
        }
        many => {
            let list = many
                .iter()
                .take(10)
                .map(|r| format!("{}/{}", show(&r.token), show(&r.user)))
                .collect::<Vec<_>>()
                .join(", ");
            let more = if many.len() > 10 {
                format!(" and {} more", many.len() - 10)
            } else {
                String::new()
            };
            return Verdict::Ambiguous(format!(
                "device {} holds {} credentials that fit this row (tokenSerialNumber/userId): {list}{more}; \
                 fill in tokenSerialNumber and userId to pick one",
                want.device,
                many.len()
            ));
        }
    }
    if held.is_empty() {
        return Verdict::Absent(format!("device {} holds no DS100 credential", want.device));
    }
    if let (Some(token), Some(user)) = (want.known_token(), want.known_user())
        && let Some(r) = held.iter().find(|r| r.token == token)
    {
        return Verdict::Mismatch(format!(
            "token {token} on device {} belongs to user {}, not {user}",
            want.device,
            show(&r.user),
        ));
    }
    // A spreadsheet that took the serial for a number dropped its leading zeros: the row
    // names no credential the tenant holds, but the one it meant is still there and working.
    // Never `absent` (which counts as done), never a deletion on a guess.
    if let Some((r, hint)) = held.iter().find_map(|r| {
        let t = r.known_token()?;
        lost_zeros_hint(&want.token, t).map(|hint| (r, hint))
    }) {
        return Verdict::Mismatch(format!(
            "device {} holds token {} (user {}), not {}{hint}",
            want.device,
            show(&r.token),
            show(&r.user),
            want.token
        ));
    }
    if let (Some(token), Some(user)) = (want.known_token(), want.known_user())
        && let Some(r) = held
            .iter()
            .find(|r| r.known_user().is_some_and(|u| same_user(u, user)))
    {
        return Verdict::Mismatch(format!(
            "user {user} holds token {} on device {}, not {token}",
            show(&r.token),
            want.device,
        ));
    }
    let what = match (want.known_token(), want.known_user()) {
        (Some(token), Some(user)) => format!("token {token} for user {user}"),
        (Some(token), None) => format!("token {token}"),
        (None, Some(user)) => format!("credential for user {user}"),
        (None, None) => "credential".to_string(),
    };
    Verdict::Absent(format!(
        "device {} holds no {what} ({} other credential{} on it)",
        want.device,
        held.len(),
        if held.len() == 1 { "" } else { "s" }
    ))
}

/// A row whose user `want.user` was resolved from `email`: when the device holds credentials
/// and every one states another user, the device is someone else's — a mismatch, nothing
/// deleted. A record that leaves its user out may be this user's, so it rules nothing out
/// (`match_row` then says ambiguous). `None`: `match_row` decides.
pub(crate) fn held_by_others(
    want: &Credential,
    email: &str,
    held: &[Credential],
) -> Option<String> {
    let user = want.known_user()?;
    let others = !held.is_empty()
        && held
            .iter()
            .all(|r| r.known_user().is_some_and(|u| !same_user(u, user)));
    if !others {
        return None;
    }
    let mut owners: Vec<&str> = Vec::new();
    for r in held {
        if !owners.iter().any(|o| same_user(o, &r.user)) {
            owners.push(&r.user);
        }
    }
    let listed = owners
        .iter()
        .take(3)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    let more = if owners.len() > 3 {
        format!(" and {} more", owners.len() - 3)
    } else {
        String::new()
    };
    Some(format!(
        "device {} holds a credential of another user (userId {listed}{more}), not of email \
         {email} (userId {user}); nothing was changed",
        want.device
    ))
}

/// The device lookup of `device` found nothing, but its zero-padded form `padded` holds
/// `held`: the row's serial lost its leading zeros and the credential it meant still works.
/// A mismatch, never a deletion on a guess.
pub(crate) fn lost_device_zeros(device: &str, padded: &str, held: &[Credential]) -> String {
    let listed = held
        .iter()
        .take(3)
        .map(|r| format!("token {} (user {})", show(&r.token), show(&r.user)))
        .collect::<Vec<_>>()
        .join(", ");
    let more = if held.len() > 3 {
        format!(" and {} more", held.len() - 3)
    } else {
        String::new()
    };
    format!(
        "device {device} holds no DS100 credential, but device {padded} holds {listed}{more}: \
         {device} looks like {padded} with its leading zeros lost, e.g. by a spreadsheet; \
         format the column as text, fix the value and run the row again; nothing was changed"
    )
}

/// Nothing under `device`, nor under its zero-padded forms `tried`, but the serial is shorter
/// than others of the file: it may be damaged, so the row is not counted as done. `failures`
/// are lookups of padded forms that got no answer.
pub(crate) fn short_device_unknown(device: &str, tried: &[String], failures: &[String]) -> String {
    let failed = if failures.is_empty() {
        String::new()
    } else {
        format!(" (a padded lookup failed: {})", failures.join("; "))
    };
    format!(
        "device {device} holds no DS100 credential and neither does {}{failed}, but {device} is \
         shorter than other device serials of this file, as if a spreadsheet dropped its \
         leading zeros: check the serial on the device and fix the value; not counted as absent",
        tried.join(" or ")
    )
}

/// When `wanted` and `held` differ only in leading zeros: the sentence that says so.
fn lost_zeros_hint(wanted: &str, held: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (wanted != held
        && digits(wanted)
        && digits(held)
        && wanted.trim_start_matches('0') == held.trim_start_matches('0'))
    .then(|| {
        format!(
            " ({wanted} looks like {held} with its leading zeros lost, e.g. by a spreadsheet: \
             format the column as text, fix the value and run the row again; nothing was changed)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_users_device_must_hold_that_users_credential() {
        let ann = "87927fb7-e185-4c33-c7e3-8e077675973c";
        let bob = "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b";
        let want = Credential::new("", "140100080", ann);
        let bobs = [Credential::new("014010008038", "140100080", bob)];
        let why = held_by_others(&want, "ann@acme.com", &bobs).expect("mismatch");
        assert!(
            why.starts_with("device 140100080 holds a credential of another user (userId"),
            "{why}"
        );
        assert!(why.contains(bob) && why.contains("ann@acme.com"), "{why}");
        // Ann's own (in another case), among others: for match_row.
        let mixed = [
            bobs[0].clone(),
            Credential::new("014010008039", "140100080", ann.to_uppercase()),
        ];
        assert_eq!(held_by_others(&want, "ann@acme.com", &mixed), None);
        // Nothing on the device: absent, as for any row.
        assert_eq!(held_by_others(&want, "ann@acme.com", &[]), None);
        // A record without its user may be Ann's.
        let unknown = [Credential::new("014010008038", "140100080", "")];
        assert_eq!(held_by_others(&want, "ann@acme.com", &unknown), None);
    }

    const U1: &str = "87927fb7-e185-4c33-c7e3-8e077675973c";
    const U2: &str = "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b";

    const DEVICE: &str = "140100080";

    /// A credential the device holds; "" for a field the lookup left out.
    fn h(token: &str, user: &str) -> Credential {
        Credential::new(token, DEVICE, user)
    }

    fn m(token: &str, user: &str) -> Verdict {
        Verdict::Match(h(token, user))
    }

    /// A row of the device; "" for a field to resolve.
    fn want(token: &str, user: &str) -> Credential {
        Credential::new(token, DEVICE, user)
    }

    #[test]
    fn exact_match_and_case_insensitive_user() {
        let held = [h("014010008038", U1), h("014010008039", U2)];
        let v = match_row(&want("014010008038", &U1.to_uppercase()), &held);
        assert_eq!(v, m("014010008038", U1));
    }

    #[test]
    fn resolution_with_zero_one_and_several_candidates() {
        let held = [h("1", U1), h("2", U1), h("3", U2)];
        assert_eq!(match_row(&want("", U2), &held), m("3", U2));
        assert_eq!(match_row(&want("2", ""), &held), m("2", U1));
        match match_row(&want("", U1), &held) {
            Verdict::Ambiguous(msg) => assert!(msg.contains("1/") && msg.contains("2/"), "{msg}"),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            match_row(&want("", ""), &held),
            Verdict::Ambiguous(_)
        ));
        assert!(matches!(
            match_row(&want("9", ""), &held),
            Verdict::Absent(_)
        ));
        let nobody = "00000000-0000-0000-0000-000000000000";
        assert!(matches!(
            match_row(&want("", nobody), &held),
            Verdict::Absent(_)
        ));
        assert!(matches!(match_row(&want("", ""), &[]), Verdict::Absent(_)));
    }

    #[test]
    fn wrong_user_or_wrong_token_is_a_mismatch() {
        let held = [h("014010008038", U2)];
        match match_row(&want("014010008038", U1), &held) {
            Verdict::Mismatch(msg) => assert!(msg.contains(U2), "{msg}"),
            v => panic!("{v:?}"),
        }
        match match_row(&want("999", U2), &held) {
            Verdict::Mismatch(msg) => assert!(msg.contains("014010008038"), "{msg}"),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            match_row(&want("999", U1), &held),
            Verdict::Absent(_)
        ));
        assert!(matches!(
            match_row(&want("999", U1), &[]),
            Verdict::Absent(_)
        ));
    }

    #[test]
    fn a_serial_that_lost_its_leading_zeros_is_a_mismatch_not_absent() {
        let held = [h("000123456789", U1), h("014010008038", U2)];
        // No user in the row (an HR file without the column): without the check, `absent`.
        for (token, user) in [("123456789", ""), ("123456789", U2), ("0123456789", "")] {
            match match_row(&want(token, user), &held) {
                Verdict::Mismatch(msg) => {
                    assert!(msg.contains("000123456789"), "{msg}");
                    assert!(msg.contains("leading zeros"), "{msg}");
                }
                v => panic!("{token}/{user}: {v:?}"),
            }
        }
        // With the right user too.
        match match_row(&want("123456789", U1), &held) {
            Verdict::Mismatch(msg) => assert!(msg.contains("leading zeros"), "{msg}"),
            v => panic!("{v:?}"),
        }
        // Other digits, or letters, are not zero loss.
        assert!(matches!(
            match_row(&want("123456780", ""), &held),
            Verdict::Absent(_)
        ));
        assert_eq!(lost_zeros_hint("0A1", "A1"), None);
        assert!(lost_zeros_hint("000", "0").is_some());
        assert_eq!(lost_zeros_hint("12", "12"), None);
    }

    #[test]
    fn lost_device_zeros_wording() {
        let msg = lost_device_zeros("40000001", "040000001", &[h("014010000001", U1)]);
        assert!(msg.starts_with("device 40000001 holds no DS100 credential, but device 040000001 holds token 014010000001"), "{msg}");
        assert!(msg.contains("leading zeros lost"), "{msg}");
        let msg = short_device_unknown("4000009", &["004000009".into(), "04000009".into()], &[]);
        assert!(
            msg.contains("neither does 004000009 or 04000009, but"),
            "{msg}"
        );
    }

    #[test]
    fn a_credential_listed_twice_is_one_candidate() {
        let rec = |token: &str, user: &str| LookupRecord {
            token_serial_number: Some(token.into()),
            user_id: Some(user.into()),
            ..LookupRecord::default()
        };
        let records = [
            rec("014010008038", U1),
            rec("014010008038", &U1.to_uppercase()),
            rec("014010008039", U1),
        ];
        let held = held(DEVICE, &records);
        assert_eq!(held.len(), 2);
        assert_eq!(
            match_row(&want("014010008038", ""), &held),
            m("014010008038", U1)
        );
    }

    #[test]
    fn a_record_with_missing_fields_is_never_proof_of_absence() {
        let no_token = h("", U1);
        let nothing = h("", "");
        // It might be the row's credential: not absent, not a match either.
        assert!(matches!(
            match_row(&want("5", U1), std::slice::from_ref(&no_token)),
            Verdict::Ambiguous(_)
        ));
        assert!(matches!(
            match_row(&want("5", U1), std::slice::from_ref(&nothing)),
            Verdict::Ambiguous(_)
        ));
        assert!(matches!(
            match_row(&want("", U1), std::slice::from_ref(&no_token)),
            Verdict::Ambiguous(_)
        ));
        // A stated field that differs rules the record out.
        assert!(matches!(
            match_row(&want("5", U2), &[no_token]),
            Verdict::Absent(_)
        ));
        // A complete match beside an unclear record is still ambiguous: either may be it.
        assert!(matches!(
            match_row(&want("5", U1), &[h("5", U1), nothing]),
            Verdict::Ambiguous(_)
        ));
    }

    #[test]
    fn blank_fields_count_as_missing() {
        let recs = vec![
            LookupRecord {
                token_serial_number: Some(" ".into()),
                user_id: None,
                ..Default::default()
            },
            LookupRecord {
                token_serial_number: Some("2".into()),
                user_id: Some(U1.into()),
                ..Default::default()
            },
        ];
        assert_eq!(held(DEVICE, &recs), vec![h("", ""), h("2", U1)]);
    }
}
