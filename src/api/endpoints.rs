//! Tenant URL handling: the accepted base URL forms, the HTTPS rule, and the endpoint URLs.

use std::net::IpAddr;

use anyhow::{Context, bail};
use reqwest::Url;

use super::patch::TokenState;

/// The endpoint URLs of one tenant, derived from the operator's `--base-url`.
#[derive(Clone, Debug)]
pub struct Endpoints {
    api_root: Url,
    delete_otp: Url,
    lookup: Url,
    disable_otp: Url,
    enable_otp: Url,
    users_lookup: Url,
}

impl Endpoints {
    /// Accepts the tenant origin (`https://acme.access.securid.com`), the admin REST URL as key
    /// files give it (`…/AdminInterface/restapi` or `…/AdminInterface/restapi/v1`), with or
    /// without a trailing slash; all resolve to the same endpoints. Plain `http://` is refused
    /// except for loopback hosts.
    pub(crate) fn parse(base_url: &str) -> anyhow::Result<Endpoints> {
        let base_url = base_url.trim();
        if let Some(message) = missing_scheme(base_url) {
            bail!("{message}");
        }
        let url = Url::parse(base_url).with_context(|| {
            format!("'{base_url}' is not a URL: give the tenant origin, e.g. https://acme.access.securid.com")
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            bail!(
                "the base URL must not contain a user name or password: credentials go in --key-file, --token-file or DS100_TOKEN"
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("the base URL '{base_url}' must not have a query or fragment");
        }
        let host = url.host_str().unwrap_or_default().to_string();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            "http" => bail!(
                "refusing plain http:// to {host}: bearer tokens must travel over HTTPS. \
                 Use https://{host}… (http:// is allowed only for loopback hosts such as the simulator)"
            ),
            other => bail!("unsupported URL scheme '{other}': use https://"),
        }
        let root_path = api_root_path(url.path()).map_err(|why| {
            anyhow::anyhow!(
                "the base URL {base_url} is refused: {why}. Accepted forms: {ACCEPTED_FORMS}. \
                 Any other path (a console page, a gateway's prefix) answers 404 to every call, \
                 which would read as \"already deleted\"; nothing was sent"
            )
        })?;
        let mut api_root = url.clone();
        api_root.set_path(root_path);
        let join = |tail: &str| {
            let mut u = api_root.clone();
            u.set_path(&format!("{root_path}/{tail}"));
            u
        };
        Ok(Endpoints {
            delete_otp: join("ds100/delete/otp"),
            lookup: join("ds100/lookup"),
            disable_otp: join("ds100/disable/otp"),
            enable_otp: join("ds100/enable/otp"),
            users_lookup: join("users/lookup"),
            api_root,
        })
    }

    /// `…/AdminInterface/restapi/v1`, shown in the plan and the summary.
    pub(crate) fn api_root(&self) -> &Url {
        &self.api_root
    }

    pub(crate) fn delete_otp(&self) -> &Url {
        &self.delete_otp
    }

    pub(crate) fn lookup(&self) -> &Url {
        &self.lookup
    }

    /// `…/ds100/disable/otp` or `…/ds100/enable/otp`.
    pub(crate) fn patch_otp(&self, to: TokenState) -> &Url {
        match to {
            TokenState::Disabled => &self.disable_otp,
            TokenState::Enabled => &self.enable_otp,
        }
    }

    /// `…/users/lookup`: a user by email address.
    pub(crate) fn users_lookup(&self) -> &Url {
        &self.users_lookup
    }
}

/// The accepted base URL forms, for messages.
const ACCEPTED_FORMS: &str = "https://<tenant>.access.securid.com (the origin), \
     https://<tenant>.access.securid.com/AdminInterface/restapi or \
     https://<tenant>.access.securid.com/AdminInterface/restapi/v1 (a trailing / is fine)";

/// The path of the API root for a base URL's path: the origin or the documented admin REST
/// path, spelled as RSA spells it, and nothing else. A wrong path is refused rather than
/// guessed at: whatever serves it (the tenant's console, a gateway, a proxy with another
/// route) answers 404 to it, and a 404 is how the API says a credential is gone.
fn api_root_path(path: &str) -> Result<&'static str, String> {
    const ROOT: &str = "/AdminInterface/restapi/v1";
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let is = |seg: &str, want: &str| seg.eq_ignore_ascii_case(want);
    match segments.as_slice() {
        [] => Ok(ROOT),
        [a, r] if is(a, "AdminInterface") && is(r, "restapi") => Ok(ROOT),
        [a, r, v] if is(a, "AdminInterface") && is(r, "restapi") && is(v, "v1") => Ok(ROOT),
        [a, r, v] if is(a, "AdminInterface") && is(r, "restapi") => Err(format!(
            "the API version '{v}' is not one this tool speaks (v1)"
        )),
        _ => Err(format!(
            "the path '{path}' is not one of the tenant's API paths"
        )),
    }
}

/// What to say of a base URL written without `https://` (`127.0.0.1:8080`,
/// `acme.access.securid.com`): the URL parser would call the first a relative URL and read
/// `localhost:8080` as a URL of the scheme `localhost`; neither says what to type.
fn missing_scheme(base_url: &str) -> Option<String> {
    let lower = base_url.to_ascii_lowercase();
    if base_url.is_empty()
        || base_url.contains("://")
        || lower.starts_with("http:")
        || lower.starts_with("https:")
    {
        return None;
    }
    let authority = base_url.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        },
    };
    let suggestion = if is_loopback_host(host) {
        format!(
            "http://{base_url} (plain http:// is allowed for loopback hosts such as the \
             simulator; https:// if it speaks TLS)"
        )
    } else {
        format!("https://{base_url}")
    };
    Some(format!(
        "the base URL '{base_url}' has no scheme: write {suggestion}; nothing was sent"
    ))
}

/// 127.0.0.0/8, ::1 and `localhost`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_accepted_forms_resolve_to_the_same_endpoints() {
        let want = "https://acme.access.securid.com/AdminInterface/restapi/v1/ds100/delete/otp";
        for base in [
            "https://acme.access.securid.com",
            "https://acme.access.securid.com/",
            "https://acme.access.securid.com/AdminInterface/restapi",
            "https://acme.access.securid.com/AdminInterface/restapi/",
            "https://acme.access.securid.com/AdminInterface/restapi/v1",
            "https://acme.access.securid.com/AdminInterface/restapi/v1/",
            " https://ACME.access.securid.com ",
        ] {
            let e = Endpoints::parse(base).unwrap();
            assert_eq!(e.delete_otp().as_str(), want, "{base}");
            assert_eq!(
                e.lookup().as_str(),
                "https://acme.access.securid.com/AdminInterface/restapi/v1/ds100/lookup"
            );
            assert_eq!(
                e.patch_otp(TokenState::Disabled).as_str(),
                "https://acme.access.securid.com/AdminInterface/restapi/v1/ds100/disable/otp"
            );
            assert_eq!(
                e.patch_otp(TokenState::Enabled).as_str(),
                "https://acme.access.securid.com/AdminInterface/restapi/v1/ds100/enable/otp"
            );
            assert_eq!(
                e.users_lookup().as_str(),
                "https://acme.access.securid.com/AdminInterface/restapi/v1/users/lookup"
            );
        }
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.9.9.9",
        ] {
            assert!(Endpoints::parse(ok).is_ok(), "{ok}");
        }
        let err = Endpoints::parse("http://acme.access.securid.com").unwrap_err();
        assert!(err.to_string().contains("HTTPS"), "{err}");
        assert!(Endpoints::parse("http://10.0.0.1").is_err());
        assert!(Endpoints::parse("ftp://x").is_err());
        assert!(Endpoints::parse("acme.access.securid.com").is_err());
    }

    #[test]
    fn a_url_without_scheme_gets_the_one_to_type() {
        for (given, want) in [
            ("127.0.0.1:8080", "write http://127.0.0.1:8080 "),
            ("localhost:8080", "write http://localhost:8080 "),
            ("[::1]:9", "write http://[::1]:9 "),
            ("127.0.0.1", "write http://127.0.0.1 "),
            (
                "acme.access.securid.com",
                "write https://acme.access.securid.com;",
            ),
            (
                "acme.access.securid.com:443/AdminInterface/restapi",
                "write https://acme.access.securid.com:443/AdminInterface/restapi;",
            ),
        ] {
            let err = Endpoints::parse(given).expect_err(given).to_string();
            assert!(err.contains("has no scheme"), "{given}: {err}");
            assert!(err.contains(want), "{given}: {err}");
            assert!(err.contains("nothing was sent"), "{given}: {err}");
        }
        // A scheme spelled wrong is not a missing one; the URL parser's message stands.
        assert!(missing_scheme("https:/acme.example").is_none());
        assert!(missing_scheme("https://acme.example").is_none());
    }

    #[test]
    fn refuses_credentials_and_queries_in_the_url() {
        assert!(Endpoints::parse("https://u:p@acme.example").is_err());
        assert!(Endpoints::parse("https://acme.example/?x=1").is_err());
    }

    #[test]
    fn wrong_paths_are_refused_not_guessed_at() {
        for bad in [
            "https://acme.access.securid.com/AdminInterface",
            "https://acme.access.securid.com/restapi",
            "https://acme.access.securid.com/AdminInterface/restapi/v2",
            "https://acme.access.securid.com/AdminInterface/restapi/v1/ds100",
            "https://acme.access.securid.com/AdminInterface/restapi/v1/ds100/delete/otp",
            "https://acme.access.securid.com/AdminInterface/v1",
        ] {
            let err = Endpoints::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("AdminInterface/restapi"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_api_path_is_spelled_as_rsa_spells_it() {
        let e =
            Endpoints::parse("https://acme.access.securid.com/admininterface/RESTAPI/V1").unwrap();
        assert_eq!(
            e.delete_otp().as_str(),
            "https://acme.access.securid.com/AdminInterface/restapi/v1/ds100/delete/otp"
        );
    }

    #[test]
    fn any_other_path_is_refused_with_the_accepted_forms() {
        for bad in [
            "https://acme.access.securid.com/console",
            "https://acme.access.securid.com/console/",
            "https://gw.example/rsa",
            "https://gw.example/rsa/AdminInterface/restapi/v1",
            "https://acme.access.securid.com/AdminInterface/restapi/v1/x",
            "https://acme.access.securid.com//AdminInterface/restapi",
            "https://acme.access.securid.com/AdminInterface/restapi//",
            "https://acme.access.securid.com/AdminInterface/restapi/v1//",
            "https://acme.access.securid.com//",
            "https://acme.access.securid.com/v1",
            "https://acme.access.securid.com/index.html",
            "https://acme.access.securid.com/%41dminInterface/restapi",
        ] {
            let err = Endpoints::parse(bad).expect_err(bad).to_string();
            assert!(
                err.contains("Accepted forms") && err.contains("/AdminInterface/restapi/v1"),
                "{bad}: {err}"
            );
            assert!(err.contains("nothing was sent"), "{bad}: {err}");
        }
        let err = Endpoints::parse("https://a.example/AdminInterface/restapi/v2").unwrap_err();
        assert!(err.to_string().contains("'v2'"), "{err}");
    }
}
