//! Matching a row against the credentials a device lookup returned (SPEC §5): resolve missing
//! fields, explain a 404, audit. Pure functions; the worker does the I/O.

use crate::api::types::LookupRecord;

/// What the row asks for; empty token or user means "unknown, resolve it".
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    pub token: &'a str,
    pub device: &'a str,
    pub user: &'a str,
}

/// One credential the tenant holds on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub token: String,
    pub user: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly one credential matches; these are its exact values.
    Match(Held),
    /// Nothing of this row is on the device.
    Absent(String),
    /// The device holds a credential for this token with another user, or for this user with
    /// another token: the row's data is wrong and the credential may still work.
    Mismatch(String),
    /// Several credentials fit a row that lacks a field.
    Ambiguous(String),
}

/// Keeps the records that name both a token and a user (the only ones a delete can target).
pub fn held(records: &[LookupRecord]) -> Vec<Held> {
    records
        .iter()
        .filter_map(|r| {
            let token = r.token_serial_number.as_deref()?.trim();
            let user = r.user_id.as_deref()?.trim();
            (!token.is_empty() && !user.is_empty()).then(|| Held {
                token: token.to_string(),
                user: user.to_string(),
            })
        })
        .collect()
}

fn same_user(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Classifies a row against everything the device holds.
pub fn classify(want: Wanted<'_>, held: &[Held]) -> Verdict {
    let fits = |h: &&Held| {
        (want.token.is_empty() || h.token == want.token)
            && (want.user.is_empty() || same_user(&h.user, want.user))
    };
    let candidates: Vec<&Held> = held.iter().filter(fits).collect();
    match candidates.as_slice() {
        [one] => return Verdict::Match((*one).clone()),
        [] => {}
        many => {
            let list = many
                .iter()
                .take(10)
                .map(|h| format!("{}/{}", h.token, h.user))
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
    if !want.token.is_empty()
        && !want.user.is_empty()
        && let Some(h) = held.iter().find(|h| h.token == want.token)
    {
        return Verdict::Mismatch(format!(
            "token {} on device {} belongs to user {}, not {}",
            h.token, want.device, h.user, want.user
        ));
    }
    if !want.token.is_empty()
        && !want.user.is_empty()
        && let Some(h) = held.iter().find(|h| same_user(&h.user, want.user))
    {
        return Verdict::Mismatch(format!(
            "user {} holds token {} on device {}, not {}",
            want.user, h.token, want.device, want.token
        ));
    }
    let what = match (want.token.is_empty(), want.user.is_empty()) {
        (false, false) => format!("token {} for user {}", want.token, want.user),
        (false, true) => format!("token {}", want.token),
        (true, false) => format!("credential for user {}", want.user),
        (true, true) => "credential".to_string(),
    };
    Verdict::Absent(format!(
        "device {} holds no {what} ({} other credential{} on it)",
        want.device,
        held.len(),
        if held.len() == 1 { "" } else { "s" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "87927fb7-e185-4c33-c7e3-8e077675973c";
    const U2: &str = "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b";

    fn h(token: &str, user: &str) -> Held {
        Held {
            token: token.into(),
            user: user.into(),
        }
    }

    fn want<'a>(token: &'a str, user: &'a str) -> Wanted<'a> {
        Wanted {
            token,
            device: "140100080",
            user,
        }
    }

    #[test]
    fn exact_match_and_case_insensitive_user() {
        let held = [h("014010008038", U1), h("014010008039", U2)];
        let v = classify(want("014010008038", &U1.to_uppercase()), &held);
        assert_eq!(v, Verdict::Match(h("014010008038", U1)));
    }

    #[test]
    fn resolution_with_zero_one_and_several_candidates() {
        let held = [h("1", U1), h("2", U1), h("3", U2)];
        assert_eq!(classify(want("", U2), &held), Verdict::Match(h("3", U2)));
        assert_eq!(classify(want("2", ""), &held), Verdict::Match(h("2", U1)));
        match classify(want("", U1), &held) {
            Verdict::Ambiguous(msg) => assert!(msg.contains("1/") && msg.contains("2/"), "{msg}"),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            classify(want("", ""), &held),
            Verdict::Ambiguous(_)
        ));
        assert!(matches!(classify(want("9", ""), &held), Verdict::Absent(_)));
        assert!(matches!(
            classify(want("", "00000000-0000-0000-0000-000000000000"), &held),
            Verdict::Absent(_)
        ));
        assert!(matches!(classify(want("", ""), &[]), Verdict::Absent(_)));
    }

    #[test]
    fn wrong_user_or_wrong_token_is_a_mismatch() {
        let held = [h("014010008038", U2)];
        match classify(want("014010008038", U1), &held) {
            Verdict::Mismatch(msg) => assert!(msg.contains(U2), "{msg}"),
            v => panic!("{v:?}"),
        }
        match classify(want("999", U2), &held) {
            Verdict::Mismatch(msg) => assert!(msg.contains("014010008038"), "{msg}"),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            classify(want("999", U1), &held),
            Verdict::Absent(_)
        ));
        assert!(matches!(classify(want("999", U1), &[]), Verdict::Absent(_)));
    }

    #[test]
    fn records_without_token_or_user_are_ignored() {
        let recs = vec![
            LookupRecord {
                token_serial_number: Some("1".into()),
                user_id: None,
                ..Default::default()
            },
            LookupRecord {
                token_serial_number: Some("2".into()),
                user_id: Some(U1.into()),
                ..Default::default()
            },
        ];
        assert_eq!(held(&recs), vec![h("2", U1)]);
    }
}
