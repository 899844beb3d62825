//! `demo`: the whole job end to end against an in-process simulator seeded from `samples/`,
//! with no tenant, no credentials and no setup. Uses the same `run` path as a real tenant.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use ds100_sim::{SimAuth, SimConfig};
use secrecy::SecretString;

use crate::api::credentials::Credentials;
use crate::api::endpoints::Endpoints;
use crate::api::jwt;
use crate::api::keyfile::KeyFile;
use crate::api::tls::TrustRoots;
use crate::config::{Confirm, DemoConfig, OutputConfig, RunConfig, SummaryJson};
use crate::console::{errln, outln};
use crate::engine::Mode;
use crate::engine::retry::RetryPolicy;
use crate::exit_codes::ExitCode;
use crate::input;
use crate::progress::ProgressMode;
use crate::rate::Rate;

use crate::config::{jwt_policy, sim_credential};

const TENANT_CSV: &str = include_str!("../../samples/demo-tenant.csv");
const INPUT_CSV: &str = include_str!("../../samples/demo-offboarding.csv");
/// How the demo ends when everything works: the sample's rows are made to show every outcome,
/// so five rows need attention by design.
const DESIGNED: [(&str, u64); 6] = [
    ("deleted", 13),
    ("absent", 1),
    ("mismatch", 1),
    ("ambiguous", 1),
    ("invalid", 3),
    ("duplicate", 1),
];

/// A throwaway key published with the tool: the demo mints JWTs with it and its simulator
/// verifies them, exactly as a run against a tenant would. It grants nothing anywhere else.
const DEMO_KEY: &str = include_str!("../../samples/demo-DO-NOT-USE-key.json");

pub async fn demo(demo: DemoConfig) -> anyhow::Result<ExitCode> {
    let DemoConfig { report, quiet } = demo;
    // A fresh directory only this user can open, every time: a fixed name in the shared temp
    // directory could be a symlink someone else planted. Kept after the run for the report.
    let mut builder = tempfile::Builder::new();
    builder.prefix("ds100-offboard-demo-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let dir = builder
        .tempdir()
        .with_context(|| {
            format!(
                "creating a directory for the demo in {}",
                std::env::temp_dir().display()
            )
        })?
        .keep();
    let seed_path = dir.join("demo-tenant.csv");
    let input_path = dir.join("demo-offboarding.csv");
    std::fs::write(&seed_path, TENANT_CSV)
        .with_context(|| format!("writing {}", seed_path.display()))?;
    std::fs::write(&input_path, INPUT_CSV)
        .with_context(|| format!("writing {}", input_path.display()))?;
    let report: PathBuf = report.unwrap_or_else(|| dir.join("demo-offboarding.report.csv"));
    let summary_path = dir.join("demo-summary.json");

    let key = Arc::new(KeyFile::parse(
        &SecretString::from(DEMO_KEY.to_string()),
        "samples/demo-DO-NOT-USE-key.json",
    )?);
    let credentials: Vec<_> = input::read_credentials(&seed_path)?
        .into_iter()
        .map(sim_credential)
        .collect();
    let n_before = credentials.len();
    let sim = ds100_sim::start(SimConfig {
        credentials,
        auth: SimAuth::Jwt(jwt_policy(&key)),
        // Two throttled answers along the way, one with each Retry-After form.
        faults: vec![
            "429,nth=6".parse().map_err(anyhow::Error::msg)?,
            "429-date,nth=15".parse().map_err(anyhow::Error::msg)?,
        ],
        latency: Duration::from_millis(15),
        ..SimConfig::default()
    })
    .await?;

    if !quiet {
        errln!(
            "Demo: a DS100 simulator on {} holds {n_before} credentials (samples/demo-tenant.csv).\n\
             The demo's files go to {}.\n\
             Offboarding the {} rows of samples/demo-offboarding.csv against it: some rows delete, some\n\
             are absent or point at the wrong user, some are invalid or repeated, and the simulator\n\
             answers 429 twice along the way. Requests carry RS256 tokens minted from the throwaway\n\
             key samples/demo-DO-NOT-USE-key.json, which the simulator verifies as RSA would.\n",
            sim.url(),
            dir.display(),
            INPUT_CSV
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .count()
        );
    }
    let cfg = RunConfig {
        only_status: None,
        input: input_path,
        delimiter: None,
        ignore_columns: Vec::new(),
        output: OutputConfig {
            report: report.clone(),
            // Its own folder is new; an operator's --report was checked not to exist.
            overwrite: false,
            summary_json: Some(SummaryJson::File(summary_path.clone())),
            progress: ProgressMode::detect(quiet),
            quiet,
        },
        endpoints: Endpoints::parse(sim.url())?,
        credentials: Credentials::KeyFile {
            key,
            lifetime: jwt::DEFAULT_LIFETIME,
        },
        trust: TrustRoots::default(),
        mode: Mode::Delete { verify: false },
        concurrency: 4,
        rate: Rate::per_second(20.0),
        burst: 1,
        adaptive: true,
        retry: RetryPolicy {
            max_attempts: 6,
            max_backoff: Duration::from_secs(2),
        },
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        stop_after: 20,
        max_deletes: None,
        confirm: Confirm::Given,
        resume: false,
        invocation: None,
    };
    let code = super::run::run(cfg).await?;
    let outcome = designed_outcome(&summary_path);
    let stats = sim.stats();
    let n_after = sim.store().len();
    sim.shutdown().await;
    if !quiet {
        outln!(
            "\nSimulator: {n_before} credentials before, {n_after} after; it answered {} requests ({} with 429).",
            stats.requests,
            stats.by_status.get(&429).copied().unwrap_or(0)
        );
        outln!(
            "Open the report to see every row's outcome: {}",
            report.display()
        );
        outln!(
            "Or the audit page of the job: ds100-offboard report {} --html {}",
            report.display(),
            report.with_extension("html").display()
        );
    }
    // The rows needing attention are the sample's deliberate mistakes: a demo that ended as
    // designed exits 0 (a real run ending like this exits 1). Anything else is a demo that
    // did not work, and says how.
    let code = match (code, outcome) {
        (ExitCode::RowFailures, Ok(())) => {
            if !quiet {
                outln!(
                    "The demo ended as designed: the rows needing attention are the sample's deliberate \
                     mistakes (a real run ending like this exits 1)."
                );
            }
            ExitCode::Success
        }
        (code, Ok(())) => code,
        (code, Err(why)) => {
            errln!("error: the demo did not end as designed: {why}");
            code.merge(ExitCode::RowFailures)
        }
    };
    if !quiet {
        outln!(
            "Next: `ds100-offboard validate your.csv`, then `ds100-offboard run your.csv --dry-run` against your tenant."
        );
    }
    Ok(code)
}

/// Whether the run's summary shows exactly the designed counts.
fn designed_outcome(summary: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(summary)
        .map_err(|e| format!("cannot read {}: {e}", summary.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", summary.display()))?;
    let statuses = json["statuses"]
        .as_object()
        .ok_or_else(|| format!("{} has no statuses", summary.display()))?;
    let got: Vec<(&str, u64)> = statuses
        .iter()
        .filter_map(|(k, v)| v.as_u64().filter(|&n| n > 0).map(|n| (k.as_str(), n)))
        .collect();
    let mut want: Vec<(&str, u64)> = DESIGNED.to_vec();
    let mut sorted = got.clone();
    want.sort_unstable();
    sorted.sort_unstable();
    if sorted == want {
        Ok(())
    } else {
        let show = |v: &[(&str, u64)]| {
            v.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!("expected {}, got {}", show(&want), show(&sorted)))
    }
}
