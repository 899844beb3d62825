//! `run`: plan, go-ahead, then the pipeline against the tenant; also the engine of `demo`.

use std::sync::Arc;
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

use crate::api::auth::TokenSource;
use crate::api::client::{ApiClient, ClientOptions};
use crate::config::RunConfig;
use crate::engine::{self, Counters, Mode, PipelineOptions, Shared, StopReason};
use crate::exit_codes::ExitCode;
use crate::input::{InputFile, InputOptions};
use crate::progress::Progress;
use crate::report::summary::Summary;
use crate::report::writer::ReportWriter;
use crate::safety::{self, Plan};

pub async fn run(cfg: RunConfig) -> anyhow::Result<ExitCode> {
    let input = InputFile::open(
        &cfg.input,
        &InputOptions {
            delimiter: cfg.delimiter,
        },
    )?;
    let scan = input.scan()?;
    let tenant = cfg.endpoints.api_root().to_string();
    let mut plan = Plan::new(&scan, cfg.mode, &tenant, &cfg.input, &cfg.output.report);
    plan.rate = cfg.rate;
    plan.burst = cfg.burst;
    plan.concurrency = cfg.concurrency;
    if !cfg.output.quiet {
        let _ = plan.print(&mut std::io::stderr().lock());
    }
    safety::approve(&plan, cfg.confirm, cfg.max_deletes)?;

    // Everything that can fail on setup fails before the report exists.
    let mut client = ApiClient::new(
        cfg.endpoints.clone(),
        &ClientOptions {
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
        },
    )?;
    if cfg.mode == Mode::DryRun {
        client = client.read_only();
    }
    let tokens = TokenSource::fixed(&cfg.token)?;
    let writer = ReportWriter::create(&cfg.output.report, cfg.output.overwrite)?;

    let shared = Arc::new(Shared {
        client,
        tokens,
        pacer: engine::pacer::Pacer::new(cfg.rate, cfg.burst, cfg.adaptive),
        retry: cfg.retry,
        mode: cfg.mode,
        stop: CancellationToken::new(),
        abort: CancellationToken::new(),
        stop_reason: OnceLock::new(),
        counters: Counters::default(),
        stop_after: cfg.stop_after,
        failure_streak: Default::default(),
    });
    let progress = Progress::new(scan.n_rows, cfg.output.progress);
    let opts = PipelineOptions {
        concurrency: cfg.concurrency,
    };
    let outcome = match engine::run_pipeline(
        shared.clone(),
        input,
        scan.duplicates,
        writer,
        progress,
        opts,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            // Requests were sent: this is no longer a "nothing sent" exit 2.
            eprintln!("error: {e:#}");
            eprintln!("The report may be incomplete; check it before running again.");
            return Ok(ExitCode::RowFailures);
        }
    };

    let (requests, throttled) = engine::requests_sent(&shared.counters);
    let command = if cfg.mode == Mode::DryRun {
        "run --dry-run"
    } else {
        "run"
    };
    let mut summary = Summary::new(command, &cfg.input, &cfg.output.report, &outcome.tally)
        .with_elapsed(outcome.elapsed);
    summary.tenant = Some(tenant);
    summary.requests_sent = requests;
    summary.throttled_429 = throttled;
    summary.final_rate_per_second = Some(shared.pacer.current_rate().as_per_second());
    let mut code = outcome.tally.exit_code();
    match &outcome.stopped {
        Some(StopReason::SafetyStop { consecutive }) => {
            summary.stopped = Some(format!(
                "safety stop after {consecutive} consecutive failed rows (--stop-after)"
            ));
            code = code.merge(ExitCode::SafetyStop);
        }
        Some(StopReason::Interrupted) => {
            summary.stopped = Some("interrupted".to_string());
            code = code.merge(ExitCode::Interrupted);
        }
        None => {}
    }
    summary.exit_code = code.code();
    super::publish(&summary, &cfg.output)?;
    Ok(code)
}
