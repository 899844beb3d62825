//! The simulator's users: who an email address names, for `POST …/users/lookup`. Seeded from
//! the seed CSV's `email` column and made up for `--generate`; addresses are compared ignoring
//! case, as the tenant's directory does.

use std::collections::HashMap;

use crate::wire::UserRecord;

/// One user of the tenant's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The userId the DS100 calls take.
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `Enabled`, `Disabled`…, as the API's `userStatus`.
    pub status: String,
}

impl User {
    /// A user known only by id and address: the name is made from the address's local part
    /// (`ann.leaver@acme.com` is Ann Leaver), as a seed CSV gives no names.
    pub fn from_address(id: &str, email: &str) -> User {
        let local = email.split('@').next().unwrap_or_default();
        let mut words = local
            .split(['.', '_', '-', '+'])
            .filter(|w| !w.is_empty())
            .map(capitalised);
        let first_name = words.next().unwrap_or_default();
        let last_name = words.next_back().unwrap_or_default();
        User {
            id: id.to_string(),
            email: email.to_string(),
            first_name,
            last_name,
            status: "Enabled".to_string(),
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

const FIRST_NAMES: [&str; 12] = [
    "Ann", "Bob", "Chen", "Dana", "Emeka", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi",
    "Lena",
];
const LAST_NAMES: [&str; 10] = [
    "Leaver", "Okafor", "Schmidt", "Tanaka", "Novak", "Silva", "Haddad", "Kowalski", "Moreau",
    "Larsen",
];

/// The user of the `i`th generated credential (`user_id` is its userId): a name from a fixed
/// list and a unique address made of it, `ann.leaver.0@example.com`.
pub fn generated_user(i: u64, user_id: &str) -> User {
    let first = FIRST_NAMES[(i % FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[((i / FIRST_NAMES.len() as u64) % LAST_NAMES.len() as u64) as usize];
    User {
        id: user_id.to_string(),
        email: format!(
            "{}.{}.{i}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        first_name: first.to_string(),
        last_name: last.to_string(),
        status: "Enabled".to_string(),
    }
}

/// Users by lowercased address. Read-only once built.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    by_email: HashMap<String, User>,
}

impl Directory {
    /// A directory of `users`; a later user with an address already taken is refused, naming
    /// both, as a tenant keeps addresses unique.
    pub(crate) fn new(users: impl IntoIterator<Item = User>) -> anyhow::Result<Directory> {
        let mut by_email: HashMap<String, User> = HashMap::new();
        for user in users {
            let key = user.email.to_lowercase();
            match by_email.get(&key) {
                Some(known) if !known.id.eq_ignore_ascii_case(&user.id) => anyhow::bail!(
                    "email {} names two users, {} and {}: an address belongs to one user",
                    user.email,
                    known.id,
                    user.id
                ),
                Some(_) => {}
                None => {
                    by_email.insert(key, user);
                }
            }
        }
        Ok(Directory { by_email })
    }

    /// The answer to a lookup of `email`, ignoring case.
    pub(crate) fn lookup(&self, email: &str) -> Option<UserRecord> {
        self.by_email
            .get(&email.to_lowercase())
            .map(|u| UserRecord {
                id: u.id.clone(),
                email: u.email.clone(),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                user_status: u.status.clone(),
                identity_source: "ds100-sim".to_string(),
                last_sync_time: None,
            })
    }

    pub(crate) fn len(&self) -> usize {
        self.by_email.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_address() {
        let u = User::from_address("u1", "ann.leaver@acme.com");
        assert_eq!(
            (u.first_name.as_str(), u.last_name.as_str()),
            ("Ann", "Leaver")
        );
        let u = User::from_address("u1", "jean-luc_van.damme@acme.com");
        assert_eq!(
            (u.first_name.as_str(), u.last_name.as_str()),
            ("Jean", "Damme")
        );
        let u = User::from_address("u1", "root@acme.com");
        assert_eq!((u.first_name.as_str(), u.last_name.as_str()), ("Root", ""));
    }

    #[test]
    fn lookups_ignore_case_and_addresses_are_unique() {
        let dir = Directory::new([
            User::from_address("u1", "Ann.Leaver@Acme.com"),
            User::from_address("U1", "ann.leaver@acme.com"), // the same user again
            User::from_address("u1", "ann@acme.com"),        // an alias
        ])
        .unwrap();
        assert_eq!(dir.len(), 2);
        let r = dir.lookup("ANN.LEAVER@ACME.COM").unwrap();
        assert_eq!(
            (r.id.as_str(), r.email.as_str()),
            ("u1", "Ann.Leaver@Acme.com")
        );
        assert_eq!(
            dir.lookup("ann@acme.com").map(|r| r.id).as_deref(),
            Some("u1")
        );
        assert!(dir.lookup("bob@acme.com").is_none());
        let err = Directory::new([
            User::from_address("u1", "ann@acme.com"),
            User::from_address("u2", "ANN@acme.com"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("names two users"), "{err}");
    }

    #[test]
    fn generated_users_have_unique_addresses() {
        let emails: std::collections::HashSet<String> =
            (0..500).map(|i| generated_user(i, "u").email).collect();
        assert_eq!(emails.len(), 500);
        assert_eq!(generated_user(0, "u").email, "ann.leaver.0@example.com");
        assert_eq!(generated_user(13, "u").first_name, "Bob");
        assert_eq!(generated_user(13, "u").last_name, "Okafor");
    }
}
