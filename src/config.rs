//! Turns parsed arguments into plain runtime configuration: defaults resolved, paths checked,
//! credentials read. Nothing below this module depends on clap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use ds100_sim::{JwtPolicy, OAuthPolicy, SimAuth, SimConfig};
use secrecy::SecretString;

use crate::api::auth::Network;
use crate::api::client::ClientOptions;
use crate::api::credentials::{self, CredentialFlags, Credentials, OAuthFlags, TOKEN_ENV};
use crate::api::endpoints::Endpoints;
use crate::api::keyfile::KeyFile;
use crate::api::patch::TokenState;
use crate::api::tls::TrustRoots;
use crate::cli::{
    DemoArgs, LogFormat, OAuthArgs, ReportArgs, RunArgs, SimArgs, TenantArgs, TokenArgs,
    ValidateArgs,
};
use crate::credential::Credential;
use crate::engine::Mode;
use crate::engine::retry::RetryPolicy;
use crate::input;
use crate::logging;
use crate::progress::ProgressMode;
use crate::rate::Rate;
use crate::report::status::{self, Status};

/// Everything `run` needs.
#[derive(Debug)]
pub(crate) struct RunConfig {
    pub(crate) input: PathBuf,
    pub(crate) delimiter: Option<u8>,
    /// `--ignore-column`: columns that look like credential fields but are not.
    pub(crate) ignore_columns: Vec<String>,
    /// `--only-status`: with a report as input, the latest statuses of the rows to keep.
    pub(crate) only_status: Option<Vec<Status>>,
    pub(crate) output: OutputConfig,
    pub(crate) endpoints: Endpoints,
    pub(crate) credentials: Credentials,
    /// `--ca-cert`: trusted on top of the platform's roots.
    pub(crate) trust: TrustRoots,
    pub(crate) mode: Mode,
    pub(crate) concurrency: usize,
    pub(crate) rate: Rate,
    pub(crate) burst: u32,
    /// Lower the rate on 429s and climb back (docs/design.md#pace-and-retries); `--no-adaptive`
    /// turns it off.
    pub(crate) adaptive: bool,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) stop_after: u64,
    /// `--max-changes` (alias `--max-deletes`): at most this many credentials deleted,
    /// disabled or enabled.
    pub(crate) max_deletes: Option<u64>,
    pub(crate) confirm: Confirm,
    /// `--resume`: continue into the existing report.
    pub(crate) resume: bool,
    /// The command line as typed, to print the resume command; `None` for the demo.
    pub(crate) invocation: Option<Vec<String>>,
}

/// Where results go and how progress shows.
#[derive(Clone, Debug)]
pub(crate) struct OutputConfig {
    pub(crate) report: PathBuf,
    pub(crate) overwrite: bool,
    pub(crate) summary_json: Option<SummaryJson>,
    pub(crate) progress: ProgressMode,
    pub(crate) quiet: bool,
}

/// Where `--summary-json` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SummaryJson {
    /// `--summary-json -`: the JSON alone on stdout (the human summary goes to stderr).
    Stdout,
    /// A file, checked before anything is sent: never the input, the report, its sidecar or
    /// lock file, a symlink, or an existing file without `--overwrite`.
    File(PathBuf),
}

/// How a real run gets the operator's go-ahead (docs/design.md#safety-before-sending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Confirm {
    /// `--yes`: the plan is printed and the run starts.
    Given,
    /// Ask on the terminal; refuse without one.
    Ask,
}

/// Everything `validate` needs.
#[derive(Debug)]
pub(crate) struct ValidateConfig {
    pub(crate) input: PathBuf,
    pub(crate) delimiter: Option<u8>,
    pub(crate) ignore_columns: Vec<String>,
    pub(crate) only_status: Option<Vec<Status>>,
    pub(crate) output: OutputConfig,
}

/// Everything `report` needs.
#[derive(Debug)]
pub struct ReportConfig {
    pub report: PathBuf,
    pub compact: Option<PathBuf>,
    pub json: bool,
    pub html: Option<PathBuf>,
    pub overwrite: bool,
    pub quiet: bool,
}

impl ReportConfig {
    pub fn from_args(args: crate::cli::ReadReportArgs, quiet: bool) -> ReportConfig {
        ReportConfig {
            report: args.report,
            compact: args.compact,
            json: args.json,
            html: args.html,
            overwrite: args.overwrite,
            quiet,
        }
    }
}

impl ValidateConfig {
    pub(crate) fn from_args(args: ValidateArgs, quiet: bool) -> anyhow::Result<ValidateConfig> {
        let only_status = parse_only_status(&args.input.only_status)?;
        let input = args.input.input;
        let output = output_config(&input, args.report, "validation", quiet, false, &[])?;
        Ok(ValidateConfig {
            input,
            delimiter: args.input.delimiter,
            ignore_columns: args.input.ignore_columns,
            only_status,
            output,
        })
    }
}

impl RunConfig {
    /// `run` (`to`: `None`), or `disable` / `enable` (`to`: the state they put credentials in).
    pub(crate) fn from_args(
        args: RunArgs,
        quiet: bool,
        to: Option<TokenState>,
    ) -> anyhow::Result<RunConfig> {
        let only_status = parse_only_status(&args.input.only_status)?;
        let input = args.input.input;
        let (mode, suffix) = match (to, args.dry_run) {
            (None, true) => (Mode::DryRun, "dry-run".to_string()),
            (None, false) => (
                Mode::Delete {
                    verify: args.verify,
                },
                "report".to_string(),
            ),
            (Some(to), dry_run) => (
                Mode::Patch { to, dry_run },
                format!(
                    "{}-{}",
                    to.verb(),
                    if dry_run { "dry-run" } else { "report" }
                ),
            ),
        };
        let reads = credential_files(&args.tenant);
        let output = output_config(&input, args.report, &suffix, quiet, args.resume, &reads)?;
        let (credentials, endpoints, trust) = tenant_config(&args.tenant, oauth_scope(mode))?;
        Ok(RunConfig {
            input,
            delimiter: args.input.delimiter,
            ignore_columns: args.input.ignore_columns,
            only_status,
            output,
            endpoints,
            credentials,
            trust,
            mode,
            concurrency: usize::from(args.send.concurrency),
            rate: args.send.rate,
            burst: args.send.burst,
            adaptive: !args.send.no_adaptive,
            retry: RetryPolicy {
                max_attempts: args.send.max_attempts,
                max_backoff: args.send.max_backoff,
            },
            timeout: args.send.timeout,
            connect_timeout: args.send.connect_timeout,
            stop_after: args.stop_after,
            max_deletes: args.max_changes,
            confirm: if args.yes {
                Confirm::Given
            } else {
                Confirm::Ask
            },
            resume: args.resume,
            invocation: Some(std::env::args().collect()),
        })
    }
}

/// `--only-status` as statuses: `None` when not given. An unknown name is refused listing the
/// valid ones.
fn parse_only_status(names: &[String]) -> anyhow::Result<Option<Vec<Status>>> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut statuses = Vec::new();
    for name in names {
        let name = name.trim();
        let Ok(status) = name.parse::<Status>() else {
            bail!(
                "--only-status: '{name}' is not a status of the report. The statuses are: {}",
                status::all_names()
            );
        };
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(Some(statuses))
}

/// Everything `token` needs.
#[derive(Debug)]
pub(crate) struct TokenConfig {
    /// A key file or an OAuth API client (never a ready token: there is nothing to print).
    pub(crate) credentials: Credentials,
    /// How an OAuth issuer is reached: default timeouts and retries, `--ca-cert`.
    pub(crate) network: Network,
}

impl TokenConfig {
    pub(crate) fn from_args(args: TokenArgs) -> anyhow::Result<TokenConfig> {
        let TokenArgs {
            key_file,
            token_lifetime,
            oauth,
            ca_cert,
        } = args;
        // DS100_TOKEN is no source here: a ready token is printed by `echo`, and a leftover
        // one must not stop `token --key-file`.
        let env = |name: &str| {
            if name == TOKEN_ENV {
                None
            } else {
                std::env::var_os(name)
            }
        };
        let credentials = credentials::resolve(
            CredentialFlags {
                key_file: key_file.as_deref(),
                token_file: None,
                token_lifetime,
                oauth: oauth_flags(&oauth, oauth_scope(Mode::Delete { verify: false })),
            },
            &env,
        )
        .map_err(|e| {
            if e.to_string().starts_with("no credentials") {
                anyhow::anyhow!(
                    "no credentials to make a token from: pass --key-file PATH (or set \
                     DS100_KEY_FILE), or an OAuth API client with --oauth-issuer, \
                     --oauth-client-id and --oauth-key (or DS100_OAUTH_ISSUER, \
                     DS100_OAUTH_CLIENT_ID and DS100_OAUTH_KEY)"
                )
            } else {
                e
            }
        })?;
        Ok(TokenConfig {
            credentials,
            network: Network {
                client: ClientOptions {
                    timeout: std::time::Duration::from_secs(30),
                    connect_timeout: std::time::Duration::from_secs(10),
                    trust: trust_roots(&ca_cert)?,
                },
                retry: RetryPolicy {
                    max_attempts: 6,
                    max_backoff: std::time::Duration::from_secs(60),
                },
            },
        })
    }
}

/// The OAuth scopes a command asks for unless `--oauth-scope` says otherwise: read for every
/// command (lookups, the check before the plan), and the write each mode performs. The one
/// place a new mode says what it needs.
pub(crate) fn oauth_scope(mode: Mode) -> &'static str {
    match mode {
        Mode::DryRun | Mode::Patch { dry_run: true, .. } => "rsa.authenticator.ds100.read",
        // RSA documents no scope of its own for enable/disable: the write scope it documents.
        Mode::Delete { .. } | Mode::Patch { dry_run: false, .. } => {
            "rsa.authenticator.ds100.delete rsa.authenticator.ds100.read"
        }
    }
}

fn oauth_flags<'a>(args: &'a OAuthArgs, default_scope: &'a str) -> OAuthFlags<'a> {
    OAuthFlags {
        issuer: args.oauth_issuer.as_deref(),
        client_id: args.oauth_client_id.as_deref(),
        key: args.oauth_key.as_deref(),
        key_id: args.oauth_key_id.as_deref(),
        scope: args.oauth_scope.as_deref(),
        default_scope,
    }
}

/// Everything `demo` needs.
#[derive(Debug)]
pub(crate) struct DemoConfig {
    /// `--report`; `None`: in the demo's own folder.
    pub(crate) report: Option<PathBuf>,
    pub(crate) quiet: bool,
}

impl DemoConfig {
    /// A `--report` of the operator's must be a new file, and so must its sidecar: the demo
    /// has no `--overwrite`, and a demo must never cost a file (`--report leavers.csv`).
    pub(crate) fn from_args(args: DemoArgs, quiet: bool) -> anyhow::Result<DemoConfig> {
        if let Some(report) = &args.report {
            let sidecar = crate::report::meta::sidecar_path(report);
            for (path, what) in [(report.as_path(), "the report"), (&sidecar, "its sidecar")] {
                if std::fs::symlink_metadata(path).is_ok() {
                    bail!(
                        "demo --report {}: {what} {} exists, and the demo writes only new \
                         files. Choose a path that does not exist, or leave --report out (the \
                         demo then writes into a new folder of its own)",
                        report.display(),
                        path.display()
                    );
                }
            }
        }
        Ok(DemoConfig {
            report: args.report,
            quiet,
        })
    }
}

/// `sim`'s flags as the simulator's configuration: the seed read, the faults parsed, the
/// credentials it accepts loaded.
pub(crate) fn sim_config(args: SimArgs) -> anyhow::Result<SimConfig> {
    let seeded = match &args.seed {
        Some(path) => input::read_credentials(path)
            .with_context(|| format!("seeding the simulator from {}", path.display()))?,
        None => Vec::new(),
    };
    let users = seeded_users(&seeded);
    let credentials = seeded.into_iter().map(sim_credential).collect();
    let faults = args
        .fault
        .iter()
        .map(|f| f.parse().map_err(|e| anyhow::anyhow!("--fault {f}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let retry_after = args
        .retry_after
        .parse()
        .map_err(|e| anyhow::anyhow!("--retry-after {}: {e}", args.retry_after))?;
    Ok(SimConfig {
        listen: args.listen,
        credentials,
        users,
        generate: args.generate,
        auth: sim_auth(&args)?,
        rate_limit_per_second: args.rate_limit.map(Rate::as_per_second),
        rate_limit_burst: args.rate_limit_burst,
        retry_after,
        error_rate: args.error_rate,
        latency: args.latency,
        faults,
        fault_seed: args.fault_seed,
        slow_delay: args.slow_delay,
        idle_timeout: args.idle_timeout,
        record_arrivals: args.record_arrivals,
        exact_user_ids: args.exact_user_ids,
    })
}

/// `--oauth-public-key` (a token endpoint), `--key-file` / `--public-key` (JWTs), else
/// `--token`, else any bearer token.
fn sim_auth(args: &SimArgs) -> anyhow::Result<SimAuth> {
    if let Some(path) = &args.oauth_public_key {
        return Ok(SimAuth::OAuth(Box::new(oauth_policy(path, args)?)));
    }
    // No DS100_KEY_FILE here: a rehearsal server must not pick up the operator's tenant key.
    let policy = match (&args.key_file, &args.public_key) {
        (Some(path), _) => Some(jwt_policy(&KeyFile::load(path)?)),
        (None, Some(path)) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --public-key {}", path.display()))?;
            Some(
                JwtPolicy::from_public_key_pem(&pem, args.jwt_sub.clone(), args.jwt_aud.clone())
                    .with_context(|| format!("--public-key {}", path.display()))?,
            )
        }
        (None, None) => None,
    };
    if let Some(mut policy) = policy {
        policy.max_age = args.max_token_age;
        return Ok(SimAuth::Jwt(policy));
    }
    if args.max_token_age.is_some() {
        anyhow::bail!("--max-token-age needs --key-file or --public-key (it applies to JWTs)");
    }
    Ok(match &args.token {
        Some(t) if !t.trim().is_empty() => SimAuth::Token(SecretString::from(t.trim().to_string())),
        _ => SimAuth::AnyBearer,
    })
}

/// The token endpoint's policy from the `--oauth-…` flags.
fn oauth_policy(path: &Path, args: &SimArgs) -> anyhow::Result<OAuthPolicy> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read --oauth-public-key {shown}"))?;
    let Some(client_id) = &args.oauth_client_id else {
        anyhow::bail!("--oauth-public-key needs --oauth-client-id ID (the client it serves)");
    };
    let mut policy = OAuthPolicy::new(&bytes, client_id)
        .with_context(|| format!("--oauth-public-key {shown}"))?;
    if let Some(kid) = &args.oauth_key_id {
        policy.key_id = Some(kid.clone());
    }
    policy.token_ttl = args.oauth_token_ttl;
    policy.allowed_scopes = args
        .oauth_allowed_scopes
        .as_ref()
        .map(|s| s.split_whitespace().map(str::to_string).collect());
    policy.faults = args
        .oauth_fault
        .iter()
        .map(|f| {
            f.parse()
                .map_err(|e| anyhow::anyhow!("--oauth-fault {f}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(policy)
}

/// A credential as the simulator stores it: the same three fields, in its own wire type.
pub(crate) fn sim_credential(cred: Credential) -> ds100_sim::Credential {
    ds100_sim::Credential {
        token_serial_number: cred.token,
        device_serial_number: cred.device,
        user_id: cred.user,
    }
}

/// The users of the seed's rows that give an email address, named after it (the simulator
/// refuses an address given to two users).
pub(crate) fn seeded_users(seeded: &[Credential]) -> Vec<ds100_sim::User> {
    seeded
        .iter()
        .filter_map(|c| {
            c.known_email()
                .map(|email| ds100_sim::User::from_address(&c.user, email))
        })
        .collect()
}

/// Accepts the tokens `key` mints: its public key, its accessID as `sub` and its
/// adminRestApiUrl as `aud`. The key file is read here, with the product's checks and
/// messages; the simulator gets only the public half.
pub(crate) fn jwt_policy(key: &KeyFile) -> JwtPolicy {
    JwtPolicy {
        public_key_der: key.public_key_der().to_vec(),
        sub: Some(key.access_id().to_string()),
        aud: Some(key.admin_rest_api_url().to_string()),
        max_age: None,
    }
}

impl From<LogFormat> for logging::LogFormat {
    fn from(format: LogFormat) -> logging::LogFormat {
        match format {
            LogFormat::Text => logging::LogFormat::Text,
            LogFormat::Json => logging::LogFormat::Json,
        }
    }
}

/// Credentials, endpoints and trust roots from the tenant flags and the environment. The base
/// URL defaults to the key file's `adminRestApiUrl`; `--base-url` / DS100_BASE_URL win.
/// `oauth_scope` is what an OAuth client asks for unless `--oauth-scope` says otherwise.
fn tenant_config(
    args: &TenantArgs,
    oauth_scope: &str,
) -> anyhow::Result<(Credentials, Endpoints, TrustRoots)> {
    let credentials = credentials::resolve(
        CredentialFlags {
            key_file: args.key_file.as_deref(),
            token_file: args.token_file.as_deref(),
            token_lifetime: args.token_lifetime,
            oauth: oauth_flags(&args.oauth, oauth_scope),
        },
        &|name| std::env::var_os(name),
    )?;
    let base_url = args
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let endpoints = match (base_url, &credentials) {
        (Some(url), Credentials::KeyFile { key, .. }) => {
            if url != key.admin_rest_api_url().trim() {
                tracing::info!(
                    "sending to {url} (--base-url / DS100_BASE_URL) rather than the key file's \
                     adminRestApiUrl {}; tokens still name the latter as their audience",
                    key.admin_rest_api_url()
                );
            }
            Endpoints::parse(url)?
        }
        (Some(url), _) => Endpoints::parse(url)?,
        (None, Credentials::KeyFile { key, .. }) => Endpoints::parse(key.admin_rest_api_url())
            .with_context(|| {
                format!(
                    "the adminRestApiUrl of the key file {} is not usable; pass --base-url",
                    key.origin()
                )
            })?,
        (None, Credentials::OAuth { client }) => bail!(
            "no tenant URL: with an OAuth API client pass --base-url \
             https://<tenant>.access.securid.com or set DS100_BASE_URL (the OAuth key does not \
             carry the tenant's admin URL; the issuer {} is not it)",
            client.issuer()
        ),
        (None, Credentials::Ready { .. }) => bail!(
            "no tenant URL: pass --base-url https://<tenant>.access.securid.com or set DS100_BASE_URL, \
             or use --key-file (its adminRestApiUrl is the default). To rehearse against the \
             simulator, start `ds100-offboard sim` and use the URL it prints"
        ),
    };
    let trust = trust_roots(&args.ca_cert)?;
    Ok((credentials, endpoints, trust))
}

/// The platform's roots plus every `--ca-cert` file.
fn trust_roots(ca_certs: &[PathBuf]) -> anyhow::Result<TrustRoots> {
    let mut trust = TrustRoots::default();
    for path in ca_certs {
        trust.add_pem_file(path)?;
    }
    Ok(trust)
}

/// The files a sending command reads besides its input — the key file, token file, OAuth key
/// and `--ca-cert` files, from flags and the environment, whichever kind of credentials wins —
/// each with what to call it. No output may land on one: `--report key.json --overwrite` (or
/// a sidecar named like the key file) would destroy what may be the only copy of a key.
fn credential_files(args: &TenantArgs) -> Vec<(PathBuf, &'static str)> {
    let env_path = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    let key_files = [
        args.key_file.clone(),
        env_path(crate::api::keyfile::KEY_FILE_ENV),
    ];
    files.extend(key_files.into_iter().flatten().map(|p| (p, "the key file")));
    files.extend(args.token_file.clone().map(|p| (p, "the token file")));
    let oauth_keys = [
        args.oauth.oauth_key.clone(),
        env_path(crate::api::oauth_key::OAUTH_KEY_ENV),
    ];
    files.extend(
        oauth_keys
            .into_iter()
            .flatten()
            .map(|p| (p, "the OAuth key")),
    );
    files.extend(args.ca_cert.iter().map(|p| (p.clone(), "a --ca-cert file")));
    files
}

/// Where the report, its sidecar and lock file and the summary JSON go, checked before
/// anything is sent: never on the input or on one of `reads` (the credential files).
fn output_config(
    input: &Path,
    args: ReportArgs,
    suffix: &str,
    quiet: bool,
    resume: bool,
    reads: &[(PathBuf, &'static str)],
) -> anyhow::Result<OutputConfig> {
    // Before a report name is made from it: `-` or `/dev/stdin` would name one beside it.
    crate::input::check_input_path(input)?;
    let report = match args.report {
        Some(p) => p,
        None => default_report_path(input, suffix)?,
    };
    if resume {
        if !report.exists() {
            bail!(
                "nothing to resume: the report {} does not exist. Run without --resume to start, \
                 or pass --report with the report of the interrupted run.",
                report.display()
            );
        }
        check_report_path(input, &report, true)?;
    } else {
        check_report_path(input, &report, args.overwrite)?;
    }
    let sidecar = crate::report::meta::sidecar_path(&report);
    let lock = crate::report::lock::lock_path(&report);
    let mut taken = vec![
        (input, "the input"),
        (report.as_path(), "the report"),
        (sidecar.as_path(), "the report's sidecar"),
        (lock.as_path(), "the report's lock file"),
    ];
    for (file, what) in reads {
        for (path, ours) in &taken[1..4] {
            if crate::report::files::same_file(file, path) {
                bail!(
                    "{ours} {} would be written over {what} {}: pass another --report PATH",
                    path.display(),
                    file.display()
                );
            }
        }
    }
    for (path, what) in &taken[2..] {
        if crate::report::files::same_file(input, path) {
            bail!(
                "the report {} would put {what} {} on the input file: pass another --report PATH",
                report.display(),
                path.display()
            );
        }
    }
    taken.extend(reads.iter().map(|(p, what)| (p.as_path(), *what)));
    let summary_json = match args.summary_json {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(SummaryJson::Stdout),
        Some(path) => {
            // The resume command the tool prints repeats `--summary-json PATH`: the summary
            // this job wrote there is replaced by the whole job's, never any other file.
            let replace = args.overwrite
                || (resume && crate::report::summary_json::is_summary_of(&path, &report));
            crate::report::files::check_summary_json(&path, replace, &taken)?;
            Some(SummaryJson::File(path))
        }
    };
    Ok(OutputConfig {
        report,
        overwrite: args.overwrite,
        summary_json,
        progress: ProgressMode::detect(quiet),
        quiet,
    })
}

/// `<dir>/<input stem>.<suffix>.csv`.
pub(crate) fn default_report_path(input: &Path, suffix: &str) -> anyhow::Result<PathBuf> {
    let stem = input.file_stem().with_context(|| {
        format!(
            "cannot derive a report name from '{}': pass --report PATH",
            input.display()
        )
    })?;
    let mut name = stem.to_os_string();
    name.push(format!(".{suffix}.csv"));
    Ok(input.with_file_name(name))
}

/// Refuses, before anything is sent, a report that exists (unless `overwrite`) or that is the
/// input itself, by any name: another spelling, a symlink or a hard link (which `--overwrite`
/// would truncate along with the report).
pub(crate) fn check_report_path(
    input: &Path,
    report: &Path,
    overwrite: bool,
) -> anyhow::Result<()> {
    if crate::report::files::same_file(input, report) {
        bail!(
            "the report path {} is the input file: pass another --report PATH",
            report.display()
        );
    }
    if report.exists() && !overwrite {
        bail!("{}", crate::report::writer::existing_report_message(report));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_report_names() {
        let p = default_report_path(Path::new("/data/leavers.csv"), "report").unwrap();
        assert_eq!(p, Path::new("/data/leavers.report.csv"));
        let p = default_report_path(Path::new("recall"), "dry-run").unwrap();
        assert_eq!(p, Path::new("recall.dry-run.csv"));
    }

    #[test]
    fn only_status_names_are_checked() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_only_status(&[]).unwrap(), None);
        assert_eq!(
            parse_only_status(&names(&["failed", " skipped", "failed"])).unwrap(),
            Some(vec![Status::Failed, Status::Skipped])
        );
        let err = parse_only_status(&names(&["failed", "disable"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'disable'"), "{err}");
        assert!(
            err.contains("disabled") && err.contains("would_enable") && err.contains("skipped"),
            "{err}"
        );
    }

    #[test]
    fn the_input_is_never_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "deviceSerialNumber\n1\n").unwrap();
        let err = check_report_path(&input, &input, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is the input"), "{err}");
        assert!(check_report_path(&input, &dir.path().join("r.csv"), false).is_ok());
    }
}
