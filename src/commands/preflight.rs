//! The check before the plan: one read-only lookup, of the first valid row's device, proves
//! that the DS100 API itself answers at the tenant URL and accepts the run's credentials. A
//! refused token, a sign-in page or a wrong URL stops the run (exit 2) before the operator is
//! asked to confirm anything, instead of failing every row after the confirmation.

use std::sync::OnceLock;

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use crate::api::answer::{self, NOT_THE_API_HINT};
use crate::api::auth::TokenSource;
use crate::api::client::{ApiClient, ClientOptions};
use crate::api::credentials::Credentials;
use crate::api::exchange::Answer;
use crate::api::lookup::parse_lookup;
use crate::config::RunConfig;
use crate::console::errln;
use crate::engine::pacer::Pacer;
use crate::engine::retry::{RetryPolicy, StatusClass, classify_status};
use crate::engine::{Counters, Mode, Shared, StopReason, probe_lookup};
use crate::input::{InputFile, RowCheck, Scan};

/// Attempts the check makes at most (fewer with a lower `--max-attempts`): enough to ride out
/// a throttled or briefly failing tenant, few enough that an unreachable one is reported soon.
const CHECK_MAX_ATTEMPTS: u32 = 4;

/// What the check leaves to the run: the client whose connection it opened and the counters
/// that counted it (so the summary does). The pacer is not handed on: the confirmation may
/// wait for minutes, and adaptive control must not read that wait as a tenant that admitted
/// nothing.
pub(crate) struct Checked {
    pub(crate) client: ApiClient,
    pub(crate) counters: Counters,
}

/// Sends the check and says why the run must not go on. Nothing it sends can write: its
/// client is read-only. A file without a valid row sends nothing, so it checks nothing.
pub(crate) async fn check_tenant(
    cfg: &RunConfig,
    tokens: &TokenSource,
    input: &InputFile,
    scan: &Scan,
) -> anyhow::Result<Checked> {
    let client = ApiClient::new(
        cfg.endpoints.clone(),
        &ClientOptions {
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            trust: cfg.trust.clone(),
        },
    )?;
    let shared = Shared {
        // A clone shares the connection pool: the run goes on over the check's connection.
        client: client.clone().read_only(),
        tokens: tokens.clone(),
        pacer: Pacer::new(cfg.rate, cfg.burst, cfg.adaptive),
        retry: RetryPolicy {
            max_attempts: cfg.retry.max_attempts.min(CHECK_MAX_ATTEMPTS),
            ..cfg.retry
        },
        mode: Mode::DryRun,
        stop: CancellationToken::new(),
        abort: CancellationToken::new(),
        stop_reason: OnceLock::new(),
        counters: Counters::default(),
        stop_after: 0,
        failure_streak: Default::default(),
        device_serials: scan.device_serials.clone(),
        people: Default::default(),
    };
    if let Some(device) = first_valid_device(input, scan)? {
        // A closed stderr is no reason to stop (nor to panic): these lines only inform.
        if !cfg.output.quiet {
            errln!(
                "Checking the tenant and the credentials: one read-only lookup of device {device} at {} …",
                cfg.endpoints.api_root()
            );
        }
        let (answer, n_requests) = match probe_lookup(&shared, &device).await {
            Ok(sent) => sent,
            // The tenant refused the token and no fresh one could be had: the issuer's answer
            // is the news, not the tenant's.
            Err(_) if let Some(StopReason::NoToken { why }) = shared.stop_reason.get() => {
                bail!("{why} Nothing was changed.")
            }
            Err(why) => bail!("{}", unreachable(cfg, &why)),
        };
        judge(cfg, &device, &answer)?;
        if !cfg.output.quiet {
            let s = if n_requests == 1 { "" } else { "s" };
            errln!(
                "  accepted (HTTP {} after {n_requests} request{s})\n",
                answer.status
            );
        }
    }
    let Shared { counters, .. } = shared;
    Ok(Checked { client, counters })
}

/// The device of the first row that would be sent.
fn first_valid_device(input: &InputFile, scan: &Scan) -> anyhow::Result<Option<String>> {
    if scan.n_valid == 0 {
        return Ok(None);
    }
    for row in input.rows(scan)? {
        let row = row?;
        if matches!(row.check, RowCheck::Valid) {
            return Ok(Some(row.credential.device));
        }
    }
    Ok(None)
}

/// Ok when the answer is the API's and the credentials were accepted: a list of records, or
/// the API's own 404 (the device is unknown, which still needed an accepted token).
fn judge(cfg: &RunConfig, device: &str, answer: &Answer) -> anyhow::Result<()> {
    let tenant = cfg.endpoints.api_root();
    let status = answer.status;
    match classify_status(status) {
        StatusClass::Success => {
            if let Some(why) = answer::foreign_lookup_success(answer) {
                bail!(
                    "the tenant at {tenant} did not answer like the DS100 API: {why}. Nothing was changed."
                );
            }
            if let Err(why) = parse_lookup(&answer.body) {
                bail!(
                    "the tenant at {tenant} did not answer like the DS100 API: the read-only \
                     check lookup of device {device} answered {status}, but {why}; \
                     {NOT_THE_API_HINT}. Nothing was changed."
                );
            }
            Ok(())
        }
        StatusClass::NotFound => match answer::foreign_404(answer) {
            None => Ok(()),
            Some(what) => bail!(
                "the tenant at {tenant} did not answer like the DS100 API: the read-only check \
                 lookup answered 404 with {what}; {NOT_THE_API_HINT}. Nothing was changed."
            ),
        },
        StatusClass::Forbidden => bail!("{}", refused(cfg, answer)),
        _ => bail!(
            "the tenant at {tenant} answered HTTP {status} to the read-only check lookup of \
             device {device} ({}); every row would fail the same way. {NOT_THE_API_HINT}. \
             Nothing was changed.",
            answer::quote(answer)
        ),
    }
}

/// The check got no answer it could use: retries exhausted on 429/5xx or the network, or a
/// TLS failure (never retried).
fn unreachable(cfg: &RunConfig, why: &str) -> String {
    let tls = if why.contains("TLS") {
        " If a TLS-inspecting proxy re-signs the tenant's certificate, add its CA with --ca-cert."
    } else {
        ""
    };
    format!(
        "cannot reach the tenant at {}: the read-only check lookup got no usable answer \
         ({why}). Check the network, --base-url and any proxy (HTTPS_PROXY) or firewall in \
         between, then run again.{tls} Nothing was changed.",
        cfg.endpoints.api_root()
    )
}

/// What to check when the tenant refuses the credentials, by kind.
fn refused(cfg: &RunConfig, answer: &Answer) -> String {
    let tenant = cfg.endpoints.api_root();
    let said = format!(
        "HTTP {} to a read-only lookup ({})",
        answer.status,
        answer::quote(answer)
    );
    match &cfg.credentials {
        Credentials::Ready { origin, .. } => format!(
            "the tenant at {tenant} refused the bearer token from {origin}: {said}. Check that \
             the token has not expired, that it was issued for this tenant, and that its \
             administrator role may read and delete authenticators (Help Desk or Super \
             Administrator); --key-file mints fresh tokens itself. Nothing was changed."
        ),
        Credentials::OAuth { client } => format!(
            "the tenant at {tenant} refused the access tokens issued by {} to the OAuth client \
             {}, a fresh one included: {said}. Check that --base-url is the tenant this API \
             client belongs to, and that the client is granted the scope '{}' and a role that \
             may read and delete authenticators. Nothing was changed.",
            client.issuer(),
            client.client_id(),
            client.scope()
        ),
        Credentials::KeyFile { key, .. } => format!(
            "the tenant at {tenant} refused the tokens minted from the key file {} (accessID \
             {}), a fresh one included: {said}. Check that this key is still active in the \
             Cloud Administration Console and belongs to this tenant (its adminRestApiUrl is \
             {}), that its role may read and delete authenticators (Help Desk or Super \
             Administrator), and that this machine's clock is right (RSA allows 60 s of skew). \
             Nothing was changed.",
            key.origin(),
            key.access_id(),
            key.admin_rest_api_url()
        ),
    }
}
