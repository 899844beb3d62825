//! Tenant URL handling: the accepted base URL forms, the HTTPS rule, and the endpoint URLs.

use std::net::IpAddr;

use anyhow::{Context, bail};
use reqwest::Url;

/// The endpoint URLs of one tenant, derived from the operator's `--base-url`.
#[derive(Clone, Debug)]
pub struct Endpoints {
    api_root: Url,
    delete_otp: Url,
    lookup: Url,
}

impl Endpoints {
    /// Accepts the tenant origin (`https://acme.access.securid.com`), the admin REST URL as key
    /// files give it (`…/AdminInterface/restapi` or `…/AdminInterface/restapi/v1`), with or
    /// without a trailing slash; all resolve to the same endpoints. Plain `http://` is refused
    /// except for loopback hosts.
    pub fn parse(base_url: &str) -> anyhow::Result<Endpoints> {
        let base_url = base_url.trim();
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
                "--base-url {base_url}: {why}. Give the tenant origin (https://acme.access.securid.com) \
                 or the admin REST URL as the key file names it (…/AdminInterface/restapi or \
                 …/AdminInterface/restapi/v1)"
            )
        })?;
        let mut api_root = url.clone();
        api_root.set_path(&root_path);
        let join = |tail: &str| {
            let mut u = api_root.clone();
            u.set_path(&format!("{root_path}/{tail}"));
            u
        };
        Ok(Endpoints {
            delete_otp: join("ds100/delete/otp"),
            lookup: join("ds100/lookup"),
            api_root,
        })
    }

    /// `…/AdminInterface/restapi/v1`, shown in the plan and the summary.
    pub fn api_root(&self) -> &Url {
        &self.api_root
    }

    pub fn delete_otp(&self) -> &Url {
        &self.delete_otp
    }

    pub fn lookup(&self) -> &Url {
        &self.lookup
    }
}

/// 127.0.0.0/8, ::1 and `localhost` (SPEC §6).
/// The path of the API root for a base URL's path: the documented tail, spelled as RSA spells
/// it, after whatever prefix a gateway may put in front. A wrong path is refused rather than
/// guessed at: the tenant answers 404 to a path it does not serve exactly as it answers 404 to
/// a credential that is gone, so a run against a wrong path would report every row `absent`.
fn api_root_path(path: &str) -> Result<String, String> {
    const TAIL: [&str; 3] = ["AdminInterface", "restapi", "v1"];
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is = |seg: &str, want: &str| seg.eq_ignore_ascii_case(want);
    // Where the documented tail starts: `…/AdminInterface/restapi[/v1]` at the end.
    let n = segments.len();
    let start = if n >= 3 && is(segments[n - 3], TAIL[0]) && is(segments[n - 2], TAIL[1]) {
        if !is(segments[n - 1], TAIL[2]) {
            return Err(format!(
                "the API version '{}' is not one this tool speaks (v1)",
                segments[n - 1]
            ));
        }
        n - 3
    } else if n >= 2 && is(segments[n - 2], TAIL[0]) && is(segments[n - 1], TAIL[1]) {
        n - 2
    } else {
        n
    };
    let prefix = &segments[..start];
    if let Some(seg) = prefix
        .iter()
        .find(|seg| TAIL[..2].iter().any(|t| is(seg, t)) || is(seg, "ds100"))
    {
        return Err(format!(
            "the path '{path}' names '{seg}' but does not end in /AdminInterface/restapi[/v1]"
        ));
    }
    let mut root = String::new();
    for seg in prefix.iter().chain(TAIL.iter()) {
        root.push('/');
        root.push_str(seg);
    }
    Ok(root)
}

pub fn is_loopback_host(host: &str) -> bool {
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
    fn keeps_a_proxy_path_prefix() {
        let e = Endpoints::parse("https://gw.example/rsa").unwrap();
        assert_eq!(
            e.api_root().as_str(),
            "https://gw.example/rsa/AdminInterface/restapi/v1"
        );
    }
}
