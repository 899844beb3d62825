//! The API credentials a run signs in with — a key file, an OAuth API client or a ready
//! bearer token — chosen from flags and environment (docs/design.md#credentials). Not to be
//! confused with the OTP credentials a run deletes (`crate::credential`).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

use super::jwt;
use super::keyfile::{KEY_FILE_ENV, KeyFile};
use super::oauth::{CLIENT_ID_ENV, ISSUER_ENV, OAuthClient};
use super::oauth_key::{OAUTH_KEY_ENV, OAuthKey};
use super::secret_file::warn_if_readable_by_others;

/// Environment variable holding a ready bearer token.
pub(crate) const TOKEN_ENV: &str = "DS100_TOKEN";

/// Where a run's API credentials come from, as configured.
#[derive(Clone, Debug)]
pub(crate) enum Credentials {
    /// Mint RS256 JWTs from the key file, each living `lifetime`.
    KeyFile {
        key: Arc<KeyFile>,
        lifetime: Duration,
    },
    /// Fetch access tokens from an OAuth issuer with a private-key JWT.
    OAuth { client: Arc<OAuthClient> },
    /// A ready bearer token, used as is.
    Ready {
        token: SecretString,
        origin: TokenOrigin,
    },
}

/// Where a ready token was read from, for messages.
#[derive(Clone, Debug)]
pub(crate) enum TokenOrigin {
    Env,
    File(PathBuf),
}

impl fmt::Display for TokenOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenOrigin::Env => f.write_str(TOKEN_ENV),
            TokenOrigin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The credential flags of a command, before the environment is consulted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CredentialFlags<'a> {
    pub(crate) key_file: Option<&'a Path>,
    pub(crate) token_file: Option<&'a Path>,
    pub(crate) token_lifetime: Option<Duration>,
    pub(crate) oauth: OAuthFlags<'a>,
}

/// The OAuth flags. `issuer`, `client_id` and `key` choose OAuth (each also from its
/// environment variable); `key_id` and `scope` only qualify it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OAuthFlags<'a> {
    pub(crate) issuer: Option<&'a str>,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) key: Option<&'a Path>,
    pub(crate) key_id: Option<&'a str>,
    /// `--oauth-scope`: replaces `default_scope`.
    pub(crate) scope: Option<&'a str>,
    /// What the command asks for without `--oauth-scope` (a function of its mode).
    pub(crate) default_scope: &'a str,
}

impl OAuthFlags<'_> {
    fn any_chooser(&self) -> bool {
        self.issuer.is_some() || self.client_id.is_some() || self.key.is_some()
    }
}

/// A kind of credentials, for choosing one and for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    KeyFile,
    Token,
    OAuth,
}

impl Kind {
    /// How a flag of this kind is named.
    fn flag(self) -> &'static str {
        match self {
            Kind::KeyFile => "--key-file",
            Kind::Token => "--token-file",
            Kind::OAuth => "--oauth-issuer/--oauth-client-id/--oauth-key",
        }
    }
}

/// The environment variables of the OAuth kind.
const OAUTH_ENVS: [&str; 3] = [ISSUER_ENV, CLIENT_ID_ENV, OAUTH_KEY_ENV];

/// Chooses the run's credentials (README "Which credentials win"):
/// - flags of two kinds (`--key-file`, `--token-file`, `--oauth-…`): refused, pick one;
/// - flags of one kind: it wins; the other kinds' environment variables are ignored with a
///   warning;
/// - no flag: `DS100_KEY_FILE`, `DS100_TOKEN` or the `DS100_OAUTH_…` variables; two kinds
///   set is refused (unset one, or pick with a flag), because silently choosing would hide a
///   leftover variable.
///
/// An OAuth client needs its issuer, client id and key, each from its flag or else its
/// variable; one missing is refused, naming it.
///
/// `env` reads the environment (a parameter so tests need not change the process's).
pub(crate) fn resolve(
    flags: CredentialFlags<'_>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> anyhow::Result<Credentials> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let flag_kinds: Vec<Kind> = [
        (flags.key_file.is_some(), Kind::KeyFile),
        (flags.token_file.is_some(), Kind::Token),
        (flags.oauth.any_chooser(), Kind::OAuth),
    ]
    .into_iter()
    .filter_map(|(given, kind)| given.then_some(kind))
    .collect();
    let env_names = |kind: Kind| -> Vec<&'static str> {
        match kind {
            Kind::KeyFile => vec![KEY_FILE_ENV],
            Kind::Token => vec![TOKEN_ENV],
            Kind::OAuth => OAUTH_ENVS.to_vec(),
        }
        .into_iter()
        .filter(|name| set(name).is_some())
        .collect()
    };
    let env_kinds: Vec<Kind> = [Kind::KeyFile, Kind::Token, Kind::OAuth]
        .into_iter()
        .filter(|k| !env_names(*k).is_empty())
        .collect();
    let kind = match (flag_kinds.as_slice(), env_kinds.as_slice()) {
        ([Kind::KeyFile, Kind::Token], _) => bail!(
            "both --key-file and --token-file given: pass only one. --key-file mints fresh tokens \
             for runs of any length; --token-file uses one ready token as is"
        ),
        ([a, b, ..], _) => bail!(
            "credentials of two kinds given ({} and {}): pass only one kind — a key file, an \
             OAuth API client, or a ready token",
            a.flag(),
            b.flag()
        ),
        ([chosen], _) => {
            for other in env_kinds.iter().filter(|k| *k != chosen) {
                for name in env_names(*other) {
                    tracing::warn!("{name} is set but ignored: {} was given", chosen.flag());
                }
            }
            *chosen
        }
        ([], [Kind::KeyFile, Kind::Token]) => bail!(
            "both {KEY_FILE_ENV} and {TOKEN_ENV} are set: unset the one you do not mean \
             (e.g. `unset {TOKEN_ENV}`), or choose explicitly with --key-file PATH or --token-file PATH"
        ),
        ([], [a, b, ..]) => bail!(
            "credentials of two kinds are set in the environment ({} and {}): unset the ones you \
             do not mean, or choose explicitly with --key-file PATH, --token-file PATH or the \
             --oauth-… flags",
            env_names(*a).join(", "),
            env_names(*b).join(", ")
        ),
        ([], [only]) => *only,
        ([], []) => bail!(
            "no credentials: pass --key-file PATH (the Administration API key file; or set \
             {KEY_FILE_ENV}), an OAuth API client with --oauth-issuer URL, --oauth-client-id ID \
             and --oauth-key FILE (or {ISSUER_ENV}, {CLIENT_ID_ENV} and {OAUTH_KEY_ENV}), or \
             give a ready bearer token in {TOKEN_ENV} or --token-file PATH. Tokens are never \
             taken on the command line."
        ),
    };
    if kind != Kind::OAuth {
        for (given, flag) in [
            (flags.oauth.key_id.is_some(), "--oauth-key-id"),
            (flags.oauth.scope.is_some(), "--oauth-scope"),
        ] {
            if given {
                bail!(
                    "{flag} applies to OAuth API clients only, and this command's credentials \
                     are {}: drop {flag}, or give the OAuth client with --oauth-issuer, \
                     --oauth-client-id and --oauth-key",
                    match kind {
                        Kind::KeyFile => "a key file",
                        _ => "a ready bearer token",
                    }
                );
            }
        }
    }
    match kind {
        Kind::KeyFile => {
            let path = flags
                .key_file
                .map(Path::to_path_buf)
                .or_else(|| set(KEY_FILE_ENV).map(PathBuf::from))
                .context("no key file")?;
            Ok(Credentials::KeyFile {
                key: Arc::new(KeyFile::load(&path)?),
                lifetime: flags.token_lifetime.unwrap_or(jwt::DEFAULT_LIFETIME),
            })
        }
        Kind::Token => ready_token(flags.token_file, set(TOKEN_ENV), flags.token_lifetime),
        Kind::OAuth => oauth_client(&flags, &set),
    }
}

/// The OAuth client from its flags, each completed from its environment variable.
fn oauth_client(
    flags: &CredentialFlags<'_>,
    set: &dyn Fn(&str) -> Option<OsString>,
) -> anyhow::Result<Credentials> {
    let o = &flags.oauth;
    let text = |flag: Option<&str>, name: &str| -> anyhow::Result<Option<String>> {
        match (flag, set(name)) {
            (Some(v), _) => Ok(Some(v.to_string())),
            (None, Some(v)) => v
                .into_string()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{name} is not valid UTF-8")),
            (None, None) => Ok(None),
        }
    };
    let issuer = text(o.issuer, ISSUER_ENV)?;
    let client_id = text(o.client_id, CLIENT_ID_ENV)?;
    let key = o
        .key
        .map(Path::to_path_buf)
        .or_else(|| set(OAUTH_KEY_ENV).map(PathBuf::from));
    let missing: Vec<String> = [
        (issuer.is_none(), "--oauth-issuer", ISSUER_ENV),
        (client_id.is_none(), "--oauth-client-id", CLIENT_ID_ENV),
        (key.is_none(), "--oauth-key", OAUTH_KEY_ENV),
    ]
    .into_iter()
    .filter(|(missing, ..)| *missing)
    .map(|(_, flag, name)| format!("{flag} (or {name})"))
    .collect();
    let (Some(issuer), Some(client_id), Some(key)) = (issuer, client_id, key) else {
        bail!(
            "an OAuth API client needs --oauth-issuer, --oauth-client-id and --oauth-key \
             together; missing: {}",
            missing.join(", ")
        );
    };
    if flags.token_lifetime.is_some() {
        tracing::warn!(
            "--token-lifetime is ignored: an OAuth access token lives as long as its issuer says"
        );
    }
    let key = OAuthKey::load(&key, o.key_id)?;
    let scope = o.scope.unwrap_or(o.default_scope);
    let client = OAuthClient::new(&issuer, &client_id, key, scope)?;
    Ok(Credentials::OAuth {
        client: Arc::new(client),
    })
}

/// A ready token from `--token-file` or the value of `DS100_TOKEN`.
fn ready_token(
    token_file: Option<&Path>,
    env_value: Option<OsString>,
    token_lifetime: Option<Duration>,
) -> anyhow::Result<Credentials> {
    if token_lifetime.is_some() {
        tracing::warn!("--token-lifetime is ignored: it applies to tokens minted from --key-file");
    }
    let (raw, origin) = match (token_file, env_value) {
        (Some(path), _) => {
            warn_if_readable_by_others(path);
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read token file {}: check the path and its permissions",
                    path.display()
                )
            })?;
            (
                SecretString::from(text),
                TokenOrigin::File(path.to_path_buf()),
            )
        }
        (None, Some(v)) => match v.into_string() {
            Ok(s) => (SecretString::from(s), TokenOrigin::Env),
            Err(_) => bail!("{TOKEN_ENV} is not valid UTF-8"),
        },
        (None, None) => bail!("no bearer token given"),
    };
    let token = clean_token(raw.expose_secret())
        .with_context(|| format!("the bearer token in {origin} is not usable"))?;
    Ok(Credentials::Ready { token, origin })
}

/// Takes the first line, trims it, accepts a pasted "Bearer " prefix, and checks the token is
/// one printable ASCII word. Errors never quote the token.
fn clean_token(raw: &str) -> anyhow::Result<SecretString> {
    let line = raw
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let token = line
        .strip_prefix("Bearer ")
        .or_else(|| line.strip_prefix("bearer "))
        .unwrap_or(line)
        .trim();
    if token.is_empty() {
        bail!("it is empty");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("it contains spaces, control or non-ASCII characters");
    }
    Ok(SecretString::from(token.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::api::keyfile::tests::PKCS1;
    use crate::api::oauth::{CLIENT_ID_ENV, ISSUER_ENV};

    #[test]
    fn cleans_pasted_tokens() {
        let t = clean_token("  Bearer abc.def-ghi_1\n\nignored").unwrap();
        assert_eq!(t.expose_secret(), "abc.def-ghi_1");
        assert!(clean_token("\n  \n").is_err());
        assert!(clean_token("two words").is_err());
        assert!(clean_token("tökén").is_err());
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn which_credentials_win() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(&key, PKCS1).unwrap();
        let tok = dir.path().join("token.txt");
        std::fs::write(&tok, "from-file\n").unwrap();
        let key_s = key.to_str().unwrap();
        let flags = |k: bool, t: bool| CredentialFlags {
            key_file: k.then_some(key.as_path()),
            token_file: t.then_some(tok.as_path()),
            ..CredentialFlags::default()
        };
        let is_key = |c: &Credentials| matches!(c, Credentials::KeyFile { .. });
        let ready = |c: &Credentials| match c {
            Credentials::Ready { token, .. } => token.expose_secret().to_string(),
            _ => String::new(),
        };
        let both_env = env_of(&[("DS100_KEY_FILE", key_s), ("DS100_TOKEN", "from-env")]);
        // Two explicit flags: refused.
        let e = resolve(flags(true, true), &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("only one"), "{e}");
        // A flag beats the other kind's variable.
        assert!(is_key(&resolve(flags(true, false), &both_env).unwrap()));
        assert_eq!(
            ready(&resolve(flags(false, true), &both_env).unwrap()),
            "from-file"
        );
        // Both variables, no flag: refused.
        let e = resolve(flags(false, false), &both_env).unwrap_err();
        assert!(e.to_string().contains("unset"), "{e}");
        // One variable.
        assert!(is_key(
            &resolve(flags(false, false), &env_of(&[("DS100_KEY_FILE", key_s)])).unwrap()
        ));
        assert_eq!(
            ready(
                &resolve(
                    flags(false, false),
                    &env_of(&[("DS100_TOKEN", "Bearer e1")])
                )
                .unwrap()
            ),
            "e1"
        );
        // Empty variables count as unset.
        let e = resolve(
            flags(false, false),
            &env_of(&[("DS100_KEY_FILE", ""), ("DS100_TOKEN", "")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no credentials"), "{e}");
        // The lifetime reaches the key-file credentials.
        let c = resolve(
            CredentialFlags {
                token_lifetime: Some(Duration::from_secs(90)),
                ..flags(true, false)
            },
            &env_of(&[]),
        )
        .unwrap();
        assert!(
            matches!(c, Credentials::KeyFile { lifetime, .. } if lifetime == Duration::from_secs(90))
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("MII"), "{dbg}");
    }

    /// A directory with the key file, a token file and an OAuth JWK.
    struct Files {
        _dir: tempfile::TempDir,
        key: PathBuf,
        token: PathBuf,
        jwk: PathBuf,
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(&key, PKCS1).unwrap();
        let token = dir.path().join("token.txt");
        std::fs::write(&token, "from-file\n").unwrap();
        let jwk = dir.path().join("client.jwk.json");
        std::fs::write(&jwk, crate::api::oauth_key::tests::EC_JWK).unwrap();
        Files {
            _dir: dir,
            key,
            token,
            jwk,
        }
    }

    const ISSUER: &str = "https://acme.auth.securid.com/oauth";

    fn oauth<'a>(f: &'a Files, scope: &'a str) -> OAuthFlags<'a> {
        OAuthFlags {
            issuer: Some(ISSUER),
            client_id: Some("client-1"),
            key: Some(f.jwk.as_path()),
            default_scope: scope,
            ..OAuthFlags::default()
        }
    }

    fn err(flags: CredentialFlags<'_>, vars: &[(&str, &str)]) -> String {
        format!("{:#}", resolve(flags, &env_of(vars)).unwrap_err())
    }

    fn client_of(c: &Credentials) -> &OAuthClient {
        match c {
            Credentials::OAuth { client } => client,
            other => panic!("not OAuth: {other:?}"),
        }
    }

    #[test]
    fn an_oauth_client_from_flags_or_environment() {
        let f = files();
        let c = resolve(
            CredentialFlags {
                oauth: oauth(&f, "read delete"),
                ..CredentialFlags::default()
            },
            &env_of(&[]),
        )
        .unwrap();
        let client = client_of(&c);
        assert_eq!(client.client_id(), "client-1");
        assert_eq!(client.token_url().as_str(), format!("{ISSUER}/token"));
        assert_eq!(client.scope(), "read delete");
        // All three from the environment; --oauth-scope replaces the default.
        let jwk = f.jwk.to_str().unwrap();
        let vars = [
            (ISSUER_ENV, ISSUER),
            (CLIENT_ID_ENV, "client-2"),
            (OAUTH_KEY_ENV, jwk),
        ];
        let c = resolve(
            CredentialFlags {
                oauth: OAuthFlags {
                    scope: Some(" x  y "),
                    default_scope: "read",
                    ..OAuthFlags::default()
                },
                ..CredentialFlags::default()
            },
            &env_of(&vars),
        )
        .unwrap();
        assert_eq!(client_of(&c).client_id(), "client-2");
        assert_eq!(client_of(&c).scope(), "x y");
        // One from a flag, two from the environment.
        let c = resolve(
            CredentialFlags {
                oauth: OAuthFlags {
                    client_id: Some("client-3"),
                    default_scope: "read",
                    ..OAuthFlags::default()
                },
                ..CredentialFlags::default()
            },
            &env_of(&vars),
        )
        .unwrap();
        assert_eq!(client_of(&c).client_id(), "client-3");
        let dbg = format!("{c:?}");
        let d: serde_json::Value =
            serde_json::from_str(crate::api::oauth_key::tests::EC_JWK).unwrap();
        assert!(!dbg.contains(&d["d"].as_str().unwrap()[..10]), "{dbg}");
    }

    #[test]
    fn an_incomplete_oauth_client_names_what_is_missing() {
        let f = files();
        let e = err(
            CredentialFlags {
                oauth: OAuthFlags {
                    client_id: None,
                    ..oauth(&f, "read")
                },
                ..CredentialFlags::default()
            },
            &[],
        );
        assert!(
            e.contains("missing: --oauth-client-id (or DS100_OAUTH_CLIENT_ID)"),
            "{e}"
        );
        let e = err(CredentialFlags::default(), &[(ISSUER_ENV, ISSUER)]);
        assert!(
            e.contains(
                "--oauth-client-id (or DS100_OAUTH_CLIENT_ID), --oauth-key (or DS100_OAUTH_KEY)"
            ),
            "{e}"
        );
        assert!(!e.contains("--oauth-issuer (or"), "{e}");
    }

    #[test]
    fn oauth_is_one_kind_among_three() {
        let f = files();
        let (key, token, jwk) = (
            f.key.to_str().unwrap(),
            f.token.as_path(),
            f.jwk.to_str().unwrap(),
        );
        let oauth_env = [
            (ISSUER_ENV, ISSUER),
            (CLIENT_ID_ENV, "c"),
            (OAUTH_KEY_ENV, jwk),
        ];
        // Flags of two kinds: refused.
        for flags in [
            CredentialFlags {
                key_file: Some(f.key.as_path()),
                oauth: oauth(&f, "r"),
                ..CredentialFlags::default()
            },
            CredentialFlags {
                token_file: Some(token),
                oauth: OAuthFlags {
                    key: Some(f.jwk.as_path()),
                    default_scope: "r",
                    ..OAuthFlags::default()
                },
                ..CredentialFlags::default()
            },
        ] {
            let e = err(flags, &[]);
            assert!(e.contains("two kinds") && e.contains("--oauth-"), "{e}");
        }
        // An OAuth flag beats DS100_KEY_FILE and DS100_TOKEN.
        let c = resolve(
            CredentialFlags {
                oauth: oauth(&f, "r"),
                ..CredentialFlags::default()
            },
            &env_of(&[(KEY_FILE_ENV, key), (TOKEN_ENV, "leftover")]),
        )
        .unwrap();
        assert!(matches!(c, Credentials::OAuth { .. }));
        // --key-file beats the OAuth variables.
        let c = resolve(
            CredentialFlags {
                key_file: Some(f.key.as_path()),
                ..CredentialFlags::default()
            },
            &env_of(&oauth_env),
        )
        .unwrap();
        assert!(matches!(c, Credentials::KeyFile { .. }));
        // Two kinds in the environment: refused, naming them.
        let mut both = oauth_env.to_vec();
        both.push((TOKEN_ENV, "leftover"));
        let e = err(CredentialFlags::default(), &both);
        assert!(e.contains("DS100_TOKEN") && e.contains(ISSUER_ENV), "{e}");
        assert!(!e.contains("leftover"), "{e}");
        // A qualifier without the kind: refused.
        let e = err(
            CredentialFlags {
                key_file: Some(f.key.as_path()),
                oauth: OAuthFlags {
                    scope: Some("r"),
                    ..OAuthFlags::default()
                },
                ..CredentialFlags::default()
            },
            &[],
        );
        assert!(e.contains("--oauth-scope applies to OAuth"), "{e}");
        // No credentials at all: every kind is named.
        let e = err(CredentialFlags::default(), &[]);
        for want in ["--key-file", "--oauth-issuer", "DS100_TOKEN"] {
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
