//! People by email: the user an address names, looked up once per distinct address per run and
//! shared by every row naming it (docs/design.md#people-by-email).
//!
//! Addresses are compared lowercased. The first row to need an address sends the user lookup
//! through its own requests (the one pacer, retries, token renewal, counted on that row: the
//! worker hands `resolve` the request to make, and `read_user_answer` reads its answer); rows
//! naming the same address meanwhile wait for that answer instead of sending their own, and
//! later rows take it from the cache. Every answer is kept — a user, no user, a failure — so an
//! address costs one lookup per run whatever becomes of it; a lookup cut short by a stop is not
//! kept (it answered nothing). Memory grows with the distinct addresses, a few hundred bytes
//! each, never with the rows.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::retry::{StatusClass, classify_status};
use crate::api::answer::{self, NOT_THE_API_HINT};
use crate::api::exchange::Answer;
use crate::api::users::{User, parse_users};
use crate::credential::email_key;

/// What a user lookup said of an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The one user with this address.
    User(User),
    /// The API's own 404 (or an empty list): no user has this address.
    NoUser(String),
    /// Several users answer to the address; nothing can be deleted on a guess.
    Several(String),
    /// Refused (403 after a fresh token, or 401).
    Unauthorized(String),
    /// Anything else: retries exhausted, a gateway's page, a body that is no user.
    Failed(String),
}

/// The run's addresses and what their lookups said.
#[derive(Debug, Default)]
pub(crate) struct People {
    by_address: Mutex<HashMap<String, Arc<OnceCell<Resolved>>>>,
}

impl People {
    /// The user `email` names: from the cache, from a lookup another row is making, or from
    /// `ask`, the row's own user lookup, sent now. `ask` answers `Err` when the run stopped
    /// before an answer came: that is not kept (the next row naming the address asks again;
    /// after a stop it is not started either), and the row is not attempted.
    pub(crate) async fn resolve<F, Fut>(&self, email: &str, ask: F) -> Result<Resolved, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Resolved, String>>,
    {
        let cell = {
            let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(email_key(email)).or_default().clone()
        };
        cell.get_or_try_init(ask).await.cloned()
    }
}

/// What an answer to the user lookup of `email` says.
pub(crate) fn read_user_answer(email: &str, answer: &Answer) -> Resolved {
    let asked = format!("users/lookup of {email}");
    match classify_status(answer.status) {
        StatusClass::Success => {
            if let Some(why) = answer::foreign_read_success(answer, "users/lookup") {
                return Resolved::Failed(why);
            }
            match parse_users(&answer.body) {
                Ok(users) => pick(email, users),
                Err(why) => Resolved::Failed(format!(
                    "{asked} answered {} with no user in it: {why}",
                    answer.status
                )),
            }
        }
        // A gateway's or proxy's 404 page says nothing about the address: a typo must not
        // become "no such user", and no such user must not become "already gone".
        StatusClass::NotFound => match answer::foreign_404(answer) {
            Some(what) => Resolved::Failed(format!(
                "{asked} answered 404 with {what}; nothing says the address is unknown: \
                 {NOT_THE_API_HINT}"
            )),
            None => Resolved::NoUser(no_user(email)),
        },
        StatusClass::Forbidden => Resolved::Unauthorized(format!(
            "{asked} answered {}{}: the token was refused or its key's role may not read users \
             (look the user's id up in the console and give it as userId, or use a key whose \
             role may)",
            answer.status,
            match answer.body_excerpt() {
                b if b.is_empty() => String::new(),
                b => format!(" ({b})"),
            }
        )),
        _ => Resolved::Failed(format!(
            "{asked} answered HTTP {}: {}",
            answer.status,
            answer.body_excerpt()
        )),
    }
}

/// "no user with email X": the report's words for an address the tenant does not know.
fn no_user(email: &str) -> String {
    format!(
        "no user with email {email}: the tenant knows no user with this address; check it for a \
         typo or an old address, or give the userId instead. Nothing was changed"
    )
}

/// The user an answer names for `email`. An answer about another address is not taken: a
/// search that matched loosely would otherwise hand over someone else's credentials. Of
/// several users, the one whose address is exactly the one asked for is taken, if only one is.
fn pick(email: &str, users: Vec<User>) -> Resolved {
    let wanted = email_key(email);
    let is_asked = |u: &User| u.email.as_deref().is_some_and(|e| email_key(e) == wanted);
    match users.len() {
        0 => Resolved::NoUser(no_user(email)),
        1 => {
            let user = users.into_iter().next().unwrap_or_default();
            match user.email.as_deref() {
                Some(e) if !e.is_empty() && email_key(e) != wanted => Resolved::Failed(format!(
                    "users/lookup of {email} answered {} whose email is {e}, not the address \
                     asked for; nothing was changed",
                    user.describe()
                )),
                _ => Resolved::User(user),
            }
        }
        n => {
            let exact: Vec<&User> = users.iter().filter(|u| is_asked(u)).collect();
            if let [one] = exact.as_slice() {
                return Resolved::User((*one).clone());
            }
            let listed = users
                .iter()
                .take(5)
                .map(User::describe)
                .collect::<Vec<_>>()
                .join("; ");
            let more = if n > 5 {
                format!(" and {} more", n - 5)
            } else {
                String::new()
            };
            Resolved::Several(format!(
                "users/lookup of {email} answered {n} users: {listed}{more}; give the userId \
                 of the one meant; nothing was changed"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn answer(status: u16, html: bool, body: &str) -> Answer {
        Answer {
            status,
            retry_after: None,
            html,
            body: Bytes::from(body.to_string()),
        }
    }

    const ANN: &str =
        r#"{"id":"u-ann","email":"Ann.Leaver@acme.com","firstName":"Ann","lastName":"Leaver"}"#;
    const BOB: &str = r#"{"id":"u-bob","email":"bob@acme.com","firstName":"Bob","lastName":"B"}"#;

    #[test]
    fn an_answer_names_the_user_or_says_why_not() {
        let e = "ann.leaver@ACME.com";
        match read_user_answer(e, &answer(200, false, ANN)) {
            Resolved::User(u) => assert_eq!(u.id, "u-ann"),
            other => panic!("{other:?}"),
        }
        // The API's own 404, JSON or empty: no such user.
        for body in [r#"{"status":404,"message":"not found"}"#, "", "  "] {
            let got = read_user_answer(e, &answer(404, false, body));
            assert!(
                matches!(&got, Resolved::NoUser(w) if w.starts_with("no user with email ann.leaver@ACME.com")),
                "{got:?}"
            );
        }
        // A gateway's 404 page is no answer about the address.
        for (html, body) in [
            (true, "<html><title>404 Not Found</title></html>"),
            (false, "404 page not found"),
        ] {
            let got = read_user_answer(e, &answer(404, html, body));
            assert!(
                matches!(&got, Resolved::Failed(w) if w.contains("--base-url")),
                "{got:?}"
            );
        }
        assert!(matches!(
            read_user_answer(e, &answer(403, false, "")),
            Resolved::Unauthorized(_)
        ));
        assert!(matches!(
            read_user_answer(e, &answer(400, false, "{}")),
            Resolved::Failed(_)
        ));
        assert!(matches!(
            read_user_answer(e, &answer(200, true, "<html>Sign in</html>")),
            Resolved::Failed(_)
        ));
        assert!(matches!(
            read_user_answer(e, &answer(200, false, r#"{"status":"error","id":"x"}"#)),
            Resolved::Failed(_)
        ));
        assert!(matches!(
            read_user_answer(e, &answer(200, false, "null")),
            Resolved::Failed(_)
        ));
    }

    #[test]
    fn another_address_or_several_users_are_never_taken_on_a_guess() {
        let got = read_user_answer("ann@acme.com", &answer(200, false, BOB));
        assert!(
            matches!(&got, Resolved::Failed(w) if w.contains("bob@acme.com")),
            "{got:?}"
        );
        let two = format!("[{ANN},{BOB}]");
        match read_user_answer("ann.leaver@acme.com", &answer(200, false, &two)) {
            Resolved::User(u) => assert_eq!(u.id, "u-ann"),
            other => panic!("{other:?}"),
        }
        let got = read_user_answer("carol@acme.com", &answer(200, false, &two));
        assert!(
            matches!(&got, Resolved::Several(w) if w.contains("u-ann") && w.contains("u-bob")),
            "{got:?}"
        );
        let twins = format!("[{ANN},{ANN}]");
        assert!(matches!(
            read_user_answer("ann.leaver@acme.com", &answer(200, false, &twins)),
            Resolved::Several(_)
        ));
        assert!(matches!(
            read_user_answer("ann@acme.com", &answer(200, false, "[]")),
            Resolved::NoUser(_)
        ));
        // An answer that does not say its address is taken: the device lookup confirms it.
        assert!(matches!(
            read_user_answer("ann@acme.com", &answer(200, false, r#"{"id":"u"}"#)),
            Resolved::User(_)
        ));
    }
}
