//! `sim`: serve the simulator until Ctrl-C, printing its URL alone on the first line of stdout
//! so scripts can read it.

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;
use secrecy::SecretString;

use ds100_sim::{JwtPolicy, OAuthPolicy, SimAuth, SimConfig};

use crate::api::keyfile::KeyFile;
use crate::config::SimCommandConfig;
use crate::console::outln;
use crate::credential::Credential;
use crate::exit_codes::ExitCode;
use crate::input;
use crate::rate::Rate;

pub async fn serve(args: SimCommandConfig) -> anyhow::Result<ExitCode> {
    let cfg = sim_config(args)?;
    let n_seeded = cfg.credentials.len() as u64 + cfg.generate;
    let oauth = matches!(cfg.auth, SimAuth::OAuth(_));
    let stop = shutdown_signal();
    let handle = ds100_sim::start(cfg).await?;
    // The first line is the contract with scripts and tests: the URL alone, so that
    // `url=$(… | head -1)` needs no parsing. Whoever reads it may close the pipe right after
    // (`head -1` does): a line that cannot be written is lost, and the simulator serves on.
    outln!("{}", handle.url());
    outln!(
        "ds100-offboard sim: {n_seeded} credentials in the store; GET {0}/__sim/store and \
         {0}/__sim/stats read it back; Ctrl-C stops",
        handle.url()
    );
    if oauth {
        outln!(
            "OAuth issuer: {0}/oauth (--oauth-issuer {0}/oauth; tokens from POST {0}{1})",
            handle.url(),
            ds100_sim::TOKEN_PATH
        );
    }
    stop.await;
    let stats = handle.stats();
    handle.shutdown().await;
    outln!("{}", serde_json::to_string(&stats).unwrap_or_default());
    Ok(ExitCode::Success)
}

fn sim_config(args: SimCommandConfig) -> anyhow::Result<SimConfig> {
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
fn sim_auth(args: &SimCommandConfig) -> anyhow::Result<SimAuth> {
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
fn oauth_policy(path: &std::path::Path, args: &SimCommandConfig) -> anyhow::Result<OAuthPolicy> {
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

/// Ctrl-C or SIGTERM, listened for from the moment this is called, not from the first poll:
/// a script that reads the URL and stops the simulator at once gets its stats and exit 0, not
/// the default action of a signal nobody listened for yet.
fn shutdown_signal() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            return Box::pin(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
        }
    }
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
