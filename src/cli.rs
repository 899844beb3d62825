//! Command-line interface: every subcommand and flag, with help and value parsers (clap).
//! Nothing below `config.rs` sees these types.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::rate::Rate;

/// Bulk removal of RSA SecurID DS100 OTP credentials, with a report of every row.
#[derive(Debug, Parser)]
#[command(name = "ds100-offboard", version, about, long_about = None)]
#[command(after_help = TOP_EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors: no progress, no logs below error, no summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

const TOP_EXAMPLES: &str = "\
Examples, in the order of a job:
  ds100-offboard validate leavers.csv                  offline check -> leavers.validation.csv
  ds100-offboard run leavers.csv --dry-run --key-file ~/secure/acme-admin-key.json
                                                       read-only audit -> leavers.dry-run.csv
  ds100-offboard run leavers.csv --key-file ~/secure/acme-admin-key.json
                                                       deletes after you confirm -> leavers.report.csv
  ds100-offboard report leavers.report.csv --html leavers.audit.html
                                                       the job's summary and its audit page
  ds100-offboard disable leavers.csv --key-file key.json   the reversible step -> leavers.disable-report.csv
  ds100-offboard enable leavers.disable-report.csv --only-status disabled    undo it
  ds100-offboard run leavers.report.csv --only-status failed,skipped         retry what failed

Try it without a tenant: ds100-offboard demo";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  ds100-offboard validate leavers.csv
  ds100-offboard validate leavers.csv --report /audit/leavers.validation.csv --summary-json -
  ds100-offboard validate hr-export.csv --delimiter ';' --ignore-column \"Employee ID\"

Next: ds100-offboard run leavers.csv --dry-run (a read-only audit against the tenant).";

const RUN_EXAMPLES: &str = "\
Examples:
  ds100-offboard run leavers.csv --dry-run --key-file ~/secure/acme-admin-key.json
  ds100-offboard run leavers.csv --key-file ~/secure/acme-admin-key.json
  ds100-offboard run leavers.csv --key-file key.json --rate 600/min --max-deletes 500
  ds100-offboard run leavers.csv --key-file key.json --resume     (after a stop or a crash)
  DS100_TOKEN=… ds100-offboard run leavers.csv --base-url https://acme.access.securid.com --yes
  ds100-offboard run leavers.csv --base-url https://acme.access.securid.com \\
      --oauth-issuer https://acme.auth.securid.com/oauth --oauth-client-id ID --oauth-key client.jwk.json

Then: ds100-offboard report leavers.report.csv --html leavers.audit.html

Exit codes: 0 every row ok · 1 a row needs attention · 2 usage, configuration or input error
(nothing sent) · 3 safety stop · 130 interrupted.";

const DISABLE_EXAMPLES: &str = "\
Examples:
  ds100-offboard disable leavers.csv --dry-run --key-file key.json   (each credential's tokenStatus)
  ds100-offboard disable leavers.csv --key-file key.json           -> leavers.disable-report.csv
  ds100-offboard enable leavers.disable-report.csv --only-status disabled --key-file key.json
                                                                   undo: enable what was disabled
  ds100-offboard run leavers.disable-report.csv --only-status disabled --key-file key.json
                                                                   later: delete what was disabled

Exit codes: 0 every row ok · 1 a row needs attention · 2 usage, configuration or input error
(nothing sent) · 3 safety stop (also: the tenant answered naming another credential) ·
130 interrupted.";

const ENABLE_EXAMPLES: &str = "\
Examples:
  ds100-offboard enable leavers.disable-report.csv --only-status disabled --key-file key.json
                                                   undo a disable -> leavers.disable-report.enable-report.csv
  ds100-offboard enable returning.csv --key-file key.json --dry-run

Exit codes: 0 every row ok · 1 a row needs attention · 2 usage, configuration or input error
(nothing sent) · 3 safety stop (also: the tenant answered naming another credential) ·
130 interrupted.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an input file offline: every row valid, invalid or duplicate. Sends nothing.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(ValidateArgs),
    /// Delete the credentials listed in INPUT (asks for confirmation first).
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Disable the credentials listed in INPUT: reversible (enable undoes it), same pipeline,
    /// flags and report as run. Every row is looked up before its PATCH.
    #[command(after_help = DISABLE_EXAMPLES)]
    Disable(RunArgs),
    /// Enable the credentials listed in INPUT again, e.g. to undo a disable from its report:
    /// same pipeline, flags and report as run.
    #[command(after_help = ENABLE_EXAMPLES)]
    Enable(RunArgs),
    /// Serve a local DS100 API simulator for rehearsals, tests and benchmarks.
    Sim(SimArgs),
    /// Run the whole job against a built-in simulator: no tenant, no credentials, no setup.
    Demo(DemoArgs),
    /// Print one fresh bearer token from a key file or an OAuth API client, for debugging
    /// with curl: curl -H "Authorization: Bearer $(ds100-offboard token --key-file key.json)" …
    Token(TokenArgs),
    /// Summarise the whole job from a report (resumed ones too: the latest line per row
    /// counts); optionally a compact report, the summary JSON or the audit page. Sends nothing.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReadReportArgs),
    /// Print shell completions. Example: ds100-offboard completions bash > /etc/bash_completion.d/ds100-offboard
    Completions(CompletionsArgs),
    /// Print the man page (roff). Example: ds100-offboard man | man -l -
    Man,
}

const REPORT_EXAMPLES: &str = "\
Examples:
  ds100-offboard report leavers.report.csv
  ds100-offboard report leavers.report.csv --html leavers.audit.html
  ds100-offboard report leavers.report.csv --compact leavers.final.csv
  ds100-offboard report leavers.dry-run.csv --json | jq .statuses

Exit codes: 0 every row's latest status is ok · 1 a row needs attention (or has no line) ·
2 not a report of ds100-offboard, or damaged before its last line.";

#[derive(Debug, Args)]
pub struct ReadReportArgs {
    /// A report written by run, run --dry-run or validate. Its sidecar (<report stem>.meta.json)
    /// is read too when it is there. Example: leavers.report.csv
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,

    /// Also write one line per input row, in input order (the latest line of each row).
    /// Example: --compact leavers.final.csv
    #[arg(long, value_name = "OUT.csv")]
    pub compact: Option<PathBuf>,

    /// Print the summary JSON (schema 1, docs/summary-schema.md) on stdout instead of the text.
    #[arg(long)]
    pub json: bool,

    /// Also write the audit page: one self-contained HTML file (no script, nothing fetched),
    /// printable on A4. Example: --html leavers.audit.html
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,

    /// Replace an existing --compact or --html file instead of refusing.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// The CSV to read: a header row with deviceSerialNumber and usually tokenSerialNumber and
    /// userId (case and punctuation ignored, e.g. token_serial_number).
    pub input: PathBuf,

    /// Field delimiter; sniffed from the header when omitted (',' ';' or TAB). Example: --delimiter ';'
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,

    /// A column whose name looks like a credential field (user, token, serial, device, id,
    /// uuid, guid, email) but is not one; without it such a column stops the tool.
    /// Repeatable; case and punctuation are ignored. Example: --ignore-column "Employee ID"
    #[arg(long = "ignore-column", value_name = "NAME")]
    pub ignore_columns: Vec<String>,

    /// With one of the tool's own reports as INPUT: keep only the rows whose latest status is
    /// one of these (comma-separated or repeated). Example: --only-status failed,skipped
    #[arg(long, value_name = "STATUS[,STATUS…]", value_delimiter = ',')]
    pub only_status: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write the per-row report. Default: <input stem>.report.csv next to the input
    /// (<stem>.validation.csv for validate). Example: --report /audit/recall-q3.csv
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Replace an existing report instead of refusing.
    #[arg(long)]
    pub overwrite: bool,

    /// Also write the end summary as JSON to this file; `-` writes it to stdout (the human
    /// summary then goes to stderr). Never the input or the report; an existing file only with
    /// --overwrite. Example: --summary-json summary.json
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub report: ReportArgs,

    #[command(flatten)]
    pub tenant: TenantArgs,

    #[command(flatten)]
    pub send: SendArgs,

    /// Read-only audit: look every row up and report what a real run would do (would_delete,
    /// or would_disable / would_enable with the credential's tokenStatus; absent, mismatch,
    /// ambiguous). Never changes anything; needs no confirmation (--yes, --verify and
    /// --max-changes are accepted and have nothing to do).
    #[arg(long)]
    pub dry_run: bool,

    /// Continue an interrupted run into its existing report: rows whose latest status is
    /// final are not sent again; every other row, and every row missing from the report, is.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,

    /// Look every row up before deleting it and delete only an exact match of token, device
    /// and user (one extra request per row). disable and enable always do.
    #[arg(long)]
    pub verify: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal). Check the plan
    /// first, e.g. with --dry-run.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Refuse to start when the plan would change (delete, disable, enable) more than N
    /// credentials. --max-deletes is the same flag. Example: --max-changes 500
    #[arg(long = "max-changes", visible_alias = "max-deletes", value_name = "N")]
    pub max_changes: Option<u64>,

    /// Stop after N consecutive rows end failed or unauthorized (exit 3); 0 never stops.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub stop_after: u64,
}

#[derive(Debug, Args)]
pub struct TenantArgs {
    /// Tenant origin or admin REST URL. Example: --base-url https://acme.access.securid.com
    /// (…/AdminInterface/restapi and …/restapi/v1 work too). HTTPS only, except loopback.
    /// Default with --key-file: the key file's adminRestApiUrl.
    #[arg(long, env = "DS100_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,

    /// File holding a ready bearer token (first line). Without it the token is read from the
    /// DS100_TOKEN environment variable. Tokens are never accepted on the command line.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    // --- credentials from a key file, trust roots (docs/design.md#credentials) ---
    /// The tenant's Administration API key file (JSON with accessID, accessKey,
    /// adminRestApiUrl); the tool mints and renews RS256 tokens from it. Also read from
    /// DS100_KEY_FILE. Example: --key-file ~/secure/acme-admin-key.json
    #[arg(long, value_name = "PATH", conflicts_with = "token_file")]
    pub key_file: Option<PathBuf>,

    /// Lifetime of each minted token; at most 60m (RSA's limit), default 55m. Shorter values
    /// are for rehearsals. Example: --token-lifetime 10m
    #[arg(long, value_name = "DURATION", value_parser = parse_token_lifetime)]
    pub token_lifetime: Option<Duration>,

    /// Also trust the CA certificate(s) in this PEM file, e.g. a TLS-inspecting proxy's;
    /// repeatable. Example: --ca-cert /etc/pki/corp-proxy-ca.pem
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Vec<PathBuf>,

    #[command(flatten)]
    pub oauth: OAuthArgs,
}

/// An OAuth API client: client credentials with a private-key JWT (docs/design.md#credentials).
#[derive(Debug, Args)]
pub struct OAuthArgs {
    // --- credentials from an OAuth API client ---
    /// The OAuth issuer of the API client; the token endpoint is <issuer>/token. HTTPS only,
    /// except loopback. Also read from DS100_OAUTH_ISSUER. Example: --oauth-issuer
    /// https://acme.auth.securid.com/oauth
    #[arg(long, value_name = "URL")]
    pub oauth_issuer: Option<String>,

    /// The OAuth API client's id. Also read from DS100_OAUTH_CLIENT_ID.
    /// Example: --oauth-client-id 5f2c0e9a-offboarding
    #[arg(long, value_name = "ID")]
    pub oauth_client_id: Option<String>,

    /// The API client's private key: a JWK (JSON; RSA, or EC P-256; with its kid) or a PEM
    /// (then give --oauth-key-id). Also read from DS100_OAUTH_KEY.
    /// Example: --oauth-key ~/secure/acme-offboarding.jwk.json
    #[arg(long, value_name = "FILE")]
    pub oauth_key: Option<PathBuf>,

    /// The key id (kid) of a PEM --oauth-key, as registered for the API client; or which key
    /// of a JWK Set. Example: --oauth-key-id 2024-offboarding
    #[arg(long, value_name = "KID")]
    pub oauth_key_id: Option<String>,

    /// The scopes to ask for, space-separated, instead of the default
    /// ("rsa.authenticator.ds100.delete rsa.authenticator.ds100.read"; with --dry-run only
    /// "rsa.authenticator.ds100.read"). Example: --oauth-scope "rsa.authenticator.ds100.read"
    #[arg(long, value_name = "SCOPES")]
    pub oauth_scope: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The Administration API key file to mint from. Also read from DS100_KEY_FILE.
    /// Example: --key-file ~/secure/acme-admin-key.json
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Lifetime of the token; at most 60m, default 55m. Example: --token-lifetime 5m
    #[arg(long, value_name = "DURATION", value_parser = parse_token_lifetime)]
    pub token_lifetime: Option<Duration>,

    #[command(flatten)]
    pub oauth: OAuthArgs,

    /// With an OAuth client: also trust the CA certificate(s) in this PEM file to reach the
    /// issuer; repeatable. Example: --ca-cert /etc/pki/corp-proxy-ca.pem
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Number of requests in flight at once. Example: --concurrency 4
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,

    /// Request rate for everything sent (deletes, lookups, retries). Examples: 10/s, 600/min, 0.5/s
    #[arg(long, value_name = "RATE", default_value = "10/s")]
    pub rate: Rate,

    /// Requests allowed back to back before pacing applies; 1 spaces every request evenly.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: u32,

    /// Attempts of each request (a lookup, the DELETE or PATCH) before giving up, the first try
    /// included.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Longest wait between two attempts, Retry-After included. Example: --max-backoff 30s
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_backoff: Duration,

    /// Time limit of one HTTP attempt, answer included. Example: --timeout 10s
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Time limit for opening a connection. Example: --connect-timeout 5s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub connect_timeout: Duration,

    /// Keep sending at --rate after 429s (every worker still holds off for Retry-After).
    /// By default the rate is cut once per throttle episode and climbs back to --rate.
    #[arg(long)]
    pub no_adaptive: bool,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port. The URL is printed on stdout.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,

    /// Seed the store from a CSV in the input format (tokenSerialNumber, deviceSerialNumber and
    /// userId filled on every row). An optional email column gives users their address, served
    /// by POST …/users/lookup (the name is made from the address: ann.leaver@… is Ann Leaver).
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,

    /// Add N generated credentials to the store (read them back from GET /__sim/store), each
    /// with a user who has a name and an address (the i-th: ann.leaver.0@example.com, …).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub generate: u64,

    /// Bearer token the simulator accepts (a rehearsal value, not a tenant secret); without it
    /// any bearer token is accepted. Also read from DS100_SIM_TOKEN.
    #[arg(
        long,
        env = "DS100_SIM_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Answer 429 above this rate (token bucket). Example: --rate-limit 50/s
    #[arg(long, value_name = "RATE")]
    pub rate_limit: Option<Rate>,

    /// Bucket size of --rate-limit; default one second's worth.
    #[arg(long, value_name = "N")]
    pub rate_limit_burst: Option<u32>,

    /// Form of Retry-After on 429: seconds, http-date or none.
    #[arg(long, value_name = "FORM", default_value = "seconds")]
    pub retry_after: String,

    /// Share of API requests answered 500. Example: --error-rate 0.05
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub error_rate: f64,

    /// Delay added to every API answer. Example: --latency 20ms
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub latency: Duration,

    /// Inject a fault: KIND,SCHEDULE[,on=delete|lookup|disable|enable|users][,device=SERIAL[|SERIAL…]];
    /// repeatable. Examples: --fault 503,every=3 --fault reset-after-commit,nth=5 --fault
    /// garbage,rate=0.2,on=lookup --fault html404,every=1,on=delete,device=140100080 --fault
    /// html404,every=1,on=users (users: the user lookup by email). KIND: a
    /// status code (400 403 404 429 500 502 503 504 …), 429-date, 429-none, html500, html200,
    /// html404 (a gateway's HTML 404 page), text404 (a plain-text 404), error200 (200 with a
    /// JSON error body, nothing done), reset, hangup, reset-after-commit, slow,
    /// slow-after-commit, garbage, truncated, close, other-token / other-user (a disable or
    /// enable answered 200 naming another token / user, nothing changed). SCHEDULE: every=N, nth=N, first=N,
    /// after=N (every request after the Nth), tokens=N (the first N distinct tokens), rate=P
    /// (seeded by --fault-seed). device= limits
    /// the fault to requests naming those device serials (counted among themselves; without a
    /// SCHEDULE, every one of them).
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<String>,

    /// Seed of the random faults (--error-rate, rate=P), for repeatable runs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub fault_seed: u64,

    /// How long the slow faults hold an answer. Example: --slow-delay 2s
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub slow_delay: Duration,

    /// Close keep-alive connections idle this long. Example: --idle-timeout 500ms
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub idle_timeout: Option<Duration>,

    /// Keep request arrival times for GET /__sim/arrivals (pacing measurements).
    #[arg(long)]
    pub record_arrivals: bool,

    /// Compare userId exactly on DELETE, case included (by default its case is ignored, as
    /// UUID hex allows): rehearses a tenant that compares strictly.
    #[arg(long)]
    pub exact_user_ids: bool,

    // --- JWT verification (docs/design.md#the-simulator) ---
    /// Accept only RS256 JWTs signed by this key file's key, with sub = its accessID and
    /// aud = its adminRestApiUrl (what `run --key-file` mints). Example: --key-file key.json
    #[arg(long, value_name = "PATH", conflicts_with_all = ["token", "public_key"])]
    pub key_file: Option<PathBuf>,

    /// Accept only RS256 JWTs verified by this RSA public key (PEM); sub and aud are checked
    /// only when --jwt-sub / --jwt-aud are given. Example: --public-key tenant-pub.pem
    #[arg(long, value_name = "PEM", conflicts_with = "token")]
    pub public_key: Option<PathBuf>,

    /// With --public-key: the `sub` (accessID) tokens must carry.
    #[arg(long, value_name = "ID", requires = "public_key")]
    pub jwt_sub: Option<String>,

    /// With --public-key: the `aud` tokens must carry, exactly. Example:
    /// --jwt-aud https://acme.access.securid.com/AdminInterface/restapi/v1
    #[arg(long, value_name = "URL", requires = "public_key")]
    pub jwt_aud: Option<String>,

    /// Refuse (403) JWTs issued longer ago than this, to rehearse token renewal quickly.
    /// Example: --max-token-age 2s
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub max_token_age: Option<Duration>,

    // --- OAuth token endpoint (docs/design.md#the-simulator) ---
    /// Serve an OAuth token endpoint at POST /oauth/token (the issuer is <sim URL>/oauth)
    /// that verifies client assertions with this public key (PEM, or a JWK; RSA or EC P-256),
    /// and accept on the API only the access tokens it issued, with the scope each endpoint
    /// needs. Example: --oauth-public-key client-pub.jwk.json
    #[arg(long, value_name = "FILE", conflicts_with_all = ["token", "key_file", "public_key", "max_token_age"], requires = "oauth_client_id")]
    pub oauth_public_key: Option<PathBuf>,

    /// With --oauth-public-key: the client id assertions must name (iss, sub, client_id).
    #[arg(long, value_name = "ID", requires = "oauth_public_key")]
    pub oauth_client_id: Option<String>,

    /// With --oauth-public-key: the kid assertions must carry (default: the JWK's kid; with a
    /// PEM and no --oauth-key-id, any kid).
    #[arg(long, value_name = "KID", requires = "oauth_public_key")]
    pub oauth_key_id: Option<String>,

    /// Lifetime of the access tokens it issues. Example: --oauth-token-ttl 2s
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    pub oauth_token_ttl: Duration,

    /// Scopes the client may be granted, space-separated; others are refused (invalid_scope).
    /// Default: whatever is asked. Example: --oauth-allowed-scopes "rsa.authenticator.ds100.read"
    #[arg(long, value_name = "SCOPES", requires = "oauth_public_key")]
    pub oauth_allowed_scopes: Option<String>,

    /// Make token requests fail: STATUS,SCHEDULE with STATUS 400, 401 (an OAuth error body:
    /// invalid_client), 429, 500, 503 (server_error) or reset, and SCHEDULE nth=N, first=N,
    /// every=N or from=N (the Nth request and all after it). Repeatable.
    /// Examples: --oauth-fault 503,nth=2 --oauth-fault 401,from=3
    #[arg(long, value_name = "SPEC", requires = "oauth_public_key")]
    pub oauth_fault: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the demo report: a new file (an existing one is never written over).
    /// Default: in the demo's own new folder in the system temp directory
    /// (ds100-offboard-demo-XXXXXX, kept after the demo; its path is printed).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

/// A humantime duration (`500ms`, `30s`, `2m`); a bare number is seconds (`--timeout 30`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}: write a duration such as 500ms, 30s or 2m"))
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn parse_token_lifetime(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    crate::api::jwt::check_lifetime(d)?;
    Ok(d)
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "'{s}' is not a probability between 0 and 1 (e.g. 0.05)"
        )),
    }
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "\\t" | "tab" | "TAB" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        _ => Err(format!(
            "'{s}' is not a supported delimiter: use ',', ';', 'tab' or '|'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults_follow_the_spec() {
        let cli = Cli::try_parse_from(["ds100-offboard", "run", "in.csv"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.send.concurrency, 8);
        assert_eq!(run.send.rate, Rate::per_second(10.0));
        assert_eq!(run.send.burst, 1);
        assert_eq!(run.send.max_attempts, 6);
        assert_eq!(run.send.max_backoff, Duration::from_secs(60));
        assert_eq!(run.send.timeout, Duration::from_secs(30));
        assert_eq!(run.send.connect_timeout, Duration::from_secs(10));
        assert_eq!(run.stop_after, 20);
        assert!(!run.yes);
    }

    #[test]
    fn value_parsers_explain_mistakes() {
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert!(parse_delimiter("x").unwrap_err().contains("supported"));
        assert!(parse_probability("1.5").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        // A bare number is seconds, as an administrator typing `--timeout 30` means.
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 0.5 "), Ok(Duration::from_millis(500)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("0").is_err());
        // --max-deletes is --max-changes, on every sending command.
        for (command, flag) in [
            ("run", "--max-deletes"),
            ("run", "--max-changes"),
            ("disable", "--max-deletes"),
            ("enable", "--max-changes"),
        ] {
            let cli =
                Cli::try_parse_from(["ds100-offboard", command, "in.csv", flag, "7"]).unwrap();
            let (Command::Run(args) | Command::Disable(args) | Command::Enable(args)) = cli.command
            else {
                panic!("{command}")
            };
            assert_eq!(args.max_changes, Some(7));
        }
        let cli = Cli::try_parse_from([
            "ds100-offboard",
            "validate",
            "r.csv",
            "--only-status",
            "failed,skipped",
            "--only-status",
            "absent",
        ])
        .unwrap();
        let Command::Validate(v) = cli.command else {
            panic!("validate")
        };
        assert_eq!(v.input.only_status, ["failed", "skipped", "absent"]);
        // A dry run takes the flags a real run is given (they have nothing to do).
        assert!(
            Cli::try_parse_from([
                "ds100-offboard",
                "run",
                "in.csv",
                "--dry-run",
                "--yes",
                "--verify",
                "--max-deletes",
                "5",
            ])
            .is_ok()
        );
        assert!(
            Cli::try_parse_from(["ds100-offboard", "run", "in.csv", "--rate", "fast"]).is_err()
        );
    }
}
