//! `run`, `disable` and `enable`: plan, go-ahead, then the pipeline against the tenant; also
//! the engine of `demo`. Handles `--resume` (continue into an existing report) and Ctrl-C
//! (stop, account, exit 130).

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::api::auth::{Network, TokenSource};
use crate::api::client::ClientOptions;
use crate::api::patch::TokenState;
use crate::config::{RunConfig, SummaryJson};
use crate::console::errln;
use crate::engine::{self, Mode, PipelineOptions, RowSet, Shared, StopReason};
use crate::exit_codes::ExitCode;
use crate::input::{InputFile, InputOptions};
use crate::progress::{Notices, Progress};
use crate::report::files;
use crate::report::invocation;
use crate::report::lock::ReportLock;
use crate::report::meta::{self, ReportMeta, ReportMode};
use crate::report::resume::PriorReport;
use crate::report::status::Status;
use crate::report::summary::{Summary, Tally};
use crate::report::writer::ReportWriter;
use crate::safety::{self, Plan};

/// Statuses a resumed run does not redo, in this mode: the final ones, and the mode's own
/// outcome.
fn is_final_in(mode: Mode) -> impl Fn(Status) -> bool {
    let own = match mode {
        Mode::DryRun => Some(Status::WouldDelete),
        Mode::Delete { .. } => None,
        Mode::Patch { to, dry_run } => Some(match (to, dry_run) {
            (TokenState::Disabled, false) => Status::Disabled,
            (TokenState::Disabled, true) => Status::WouldDisable,
            (TokenState::Enabled, false) => Status::Enabled,
            (TokenState::Enabled, true) => Status::WouldEnable,
        }),
    };
    move |s| s.is_final() || Some(s) == own
}

/// The status this mode undoes, when it is a PATCH: `enable` puts back what a `disable` did.
fn undo_of(mode: Mode) -> Option<Status> {
    match mode {
        Mode::Patch { to, .. } => Some(match to {
            TokenState::Enabled => Status::Disabled,
            TokenState::Disabled => Status::Enabled,
        }),
        Mode::DryRun | Mode::Delete { .. } => None,
    }
}

/// What the report's sidecar calls this mode (`--verify` is a delete run).
fn report_mode(mode: Mode) -> ReportMode {
    match mode {
        Mode::DryRun => ReportMode::DryRun,
        Mode::Delete { .. } => ReportMode::Delete,
        Mode::Patch { to, dry_run } => match (to, dry_run) {
            (TokenState::Disabled, false) => ReportMode::Disable,
            (TokenState::Disabled, true) => ReportMode::DisableDryRun,
            (TokenState::Enabled, false) => ReportMode::Enable,
            (TokenState::Enabled, true) => ReportMode::EnableDryRun,
        },
    }
}

/// The command as the summary and the sidecar name it.
fn command_name(mode: Mode) -> &'static str {
    match mode {
        Mode::DryRun => "run --dry-run",
        Mode::Delete { .. } => "run",
        Mode::Patch { to, dry_run } => match (to, dry_run) {
            (TokenState::Disabled, false) => "disable",
            (TokenState::Disabled, true) => "disable --dry-run",
            (TokenState::Enabled, false) => "enable",
            (TokenState::Enabled, true) => "enable --dry-run",
        },
    }
}

pub(crate) async fn run(cfg: RunConfig) -> anyhow::Result<ExitCode> {
    let started = SystemTime::now();
    // One run per report, from before it is read (resume) or created until the end.
    let _lock = ReportLock::acquire(&cfg.output.report)?;
    let input = InputFile::open(
        &cfg.input,
        &InputOptions {
            delimiter: cfg.delimiter,
            ignore_columns: cfg.ignore_columns.clone(),
            only_status: cfg.only_status.clone(),
            undo_of: undo_of(cfg.mode),
        },
    )?;
    // A report read as input must not change under the run: a run still writing it (its own
    // --resume) is refused, and kept off until this one ends.
    let _input_lock = match input.is_report() {
        true => Some(ReportLock::acquire(&cfg.input).map_err(|e| {
            anyhow::anyhow!("the input is a report that is still being written: {e:#}")
        })?),
        false => None,
    };
    let scan = Arc::new(input.scan()?);
    let tenant = cfg.endpoints.api_root().to_string();
    if let Some(facts) = scan.report_facts() {
        super::check_input_report(&cfg.input, &facts, &scan.sha256, Some(&tenant))?;
    }
    if scan.n_rows == 0 {
        errln!(
            "error: {}",
            super::no_rows_message(&cfg.input, scan.report_facts().as_ref())
        );
        return Ok(ExitCode::RowFailures);
    }
    let command = command_name(cfg.mode);
    let input_report = super::input_report(&scan);
    let mut plan = Plan::new(&scan, cfg.mode, &tenant, &cfg.input, &cfg.output.report);
    plan.rate = cfg.rate;
    plan.burst = cfg.burst;
    plan.concurrency = cfg.concurrency;

    // With --resume, everything about the old report is settled before anything is sent.
    let mut carried = Tally::default();
    let mut done = RowSet::default();
    let mut complete_len = None;
    let mut recorded = None;
    if cfg.resume {
        let prior = PriorReport::read(&cfg.output.report, scan.max_row)?;
        // Another tenant's or another mode's report is another job: refused before anything.
        let meta = ReportMeta::read(&cfg.output.report)?;
        meta.check_resume(&cfg.output.report, report_mode(cfg.mode), &tenant)?;
        meta.check_resume_input(&cfg.output.report, input_report.as_ref())?;
        recorded = Some(meta);
        if prior.had_partial_tail {
            tracing::warn!(
                "the report ends with a half-written row (the run was killed); it is dropped and that row done again"
            );
        }
        let rplan = prior.plan(
            input.rows(&scan)?,
            is_final_in(cfg.mode),
            &cfg.output.report,
        )?;
        if rplan.rows_to_write() == 0 {
            if !cfg.output.quiet {
                errln!(
                    "Nothing to resume: every one of the {} rows already has a final status in {}. Nothing was sent.",
                    scan.n_rows,
                    cfg.output.report.display()
                );
            }
            let mut summary = Summary::new(command, &cfg.input, &cfg.output.report, &rplan.carried);
            summary.tenant = Some(tenant);
            summary.rows_carried_over = rplan.carried.total();
            invocation::record(
                &cfg.output.report,
                &mut summary,
                invocation::Facts {
                    started,
                    identity: None,
                    input_sha256: scan.sha256.clone(),
                    rate_per_second: Some(cfg.rate.as_per_second()),
                    resume: cfg.resume,
                },
            );
            super::publish(&summary, &cfg.output)?;
            return Ok(rplan.carried.exit_code());
        }
        plan.to_send = rplan.to_send;
        plan.needs_lookup = rplan.to_send_needing_lookup;
        plan.no_user = rplan.to_send_naming_no_user;
        plan.by_email = rplan.to_send_by_email;
        plan.carried_over = Some(rplan.carried.total());
        carried = rplan.carried;
        done = rplan.done;
        complete_len = Some(rplan.complete_len);
    }
    // Before the plan: a refused token or a URL that is not the API stops here (exit 2). An
    // OAuth client fetches its first token here, before the check.
    let network = Network {
        client: ClientOptions {
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            trust: cfg.trust.clone(),
        },
        retry: cfg.retry,
    };
    let tokens = TokenSource::new(&cfg.credentials, &network).await?;
    let checked = super::preflight::check_tenant(&cfg, &tokens, &input, &scan).await?;
    // `-q` hides the plan, except from an operator asked to confirm it.
    let show_plan = !cfg.output.quiet || safety::will_ask(&plan, cfg.confirm, cfg.max_deletes);
    if show_plan {
        let _ = plan.print(&mut std::io::stderr().lock());
        // Before the go-ahead, so an operator told the token runs out can still stop.
        errln!("  credentials      {}", tokens.describe());
    }
    if let Some(warning) = recorded.and_then(|m| m.identity_warning(&tokens.identity())) {
        tracing::warn!("{warning}");
    }
    tokens.warn_if_expires_within(plan.estimated_duration());
    safety::approve(&plan, cfg.confirm, cfg.max_deletes)?;
    // The confirmation may have waited for minutes: what is sent must be what was planned.
    input.check_unchanged(&scan)?;

    // Everything that can fail on setup fails before the report is touched.
    let mut client = checked.client;
    if cfg.mode.is_dry_run() {
        client = client.read_only();
    }
    if let Some(SummaryJson::File(path)) = &cfg.output.summary_json {
        // Found out now, not after the deletions (exit 2 means nothing was sent); nothing is
        // left behind, so a run that stops here can be started again as it was.
        files::probe_writable(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot write --summary-json {}: {e}; nothing was sent",
                path.display()
            )
        })?;
    }
    let writer = match complete_len {
        Some(len) => ReportWriter::append(&cfg.output.report, len)?,
        None => {
            let mut meta = ReportMeta::new(
                report_mode(cfg.mode),
                Some(tenant.clone()),
                Some(tokens.identity()),
                &cfg.input,
                started,
            )
            .with_input(&scan.sha256, scan.n_rows);
            meta.input_report = input_report.clone();
            meta::create_report(&cfg.output.report, cfg.output.overwrite, &meta)?
        }
    };

    let shared = Arc::new(Shared {
        client,
        tokens,
        pacer: engine::pacer::Pacer::new(cfg.rate, cfg.burst, cfg.adaptive),
        retry: cfg.retry,
        mode: cfg.mode,
        stop: CancellationToken::new(),
        abort: CancellationToken::new(),
        stop_reason: OnceLock::new(),
        counters: checked.counters,
        stop_after: cfg.stop_after,
        failure_streak: Default::default(),
        device_serials: scan.device_serials.clone(),
        people: Default::default(),
    });
    let progress = Progress::new(
        scan.n_rows - carried.total(),
        plan.to_send,
        cfg.output.progress,
    );
    let signals = tokio::spawn(handle_interrupts(
        shared.clone(),
        progress.notices(),
        cfg.output.quiet,
    ));
    let opts = PipelineOptions {
        concurrency: cfg.concurrency,
    };
    let result = engine::run_pipeline(
        shared.clone(),
        input,
        scan.clone(),
        writer,
        progress,
        opts,
        done,
    )
    .await;
    signals.abort();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            // Requests may have been sent: this is no longer a "nothing sent" exit 2.
            errln!("error: {e:#}");
            errln!("The report is valid up to its last complete row; fix the cause, then resume.");
            if let Some(cmd) = resume_command(&cfg) {
                errln!("To resume: {cmd}");
            }
            return Ok(ExitCode::RowFailures);
        }
    };

    let mut whole_job = carried.clone();
    whole_job.merge(&outcome.tally);
    let counts = shared.counters.snapshot();
    let mut summary = Summary::new(command, &cfg.input, &cfg.output.report, &whole_job)
        .with_elapsed(outcome.elapsed);
    summary.tenant = Some(tenant);
    summary.rows_sent_this_run = counts.rows_sent;
    summary.rows_carried_over = carried.total();
    summary.requests_sent = counts.requests;
    summary.throttled_429 = counts.throttled;
    summary.final_rate_per_second = Some(shared.pacer.current_rate().as_per_second());
    let mut code = whole_job.exit_code();
    match &outcome.stopped {
        Some(StopReason::SafetyStop { consecutive }) => {
            summary.stopped = Some(format!(
                "safety stop after {consecutive} consecutive failed rows (--stop-after); check the tenant and the token"
            ));
            code = code.merge(ExitCode::SafetyStop);
        }
        Some(StopReason::Interrupted) => {
            summary.stopped =
                Some("interrupted; rows not attempted are marked skipped".to_string());
            code = code.merge(ExitCode::Interrupted);
        }
        Some(StopReason::WrongCredential { row }) => {
            summary.stopped = Some(format!(
                "safety stop: the tenant answered row {row}'s change naming another credential \
                 than the row's (see its error); check those credentials on the tenant before \
                 resuming"
            ));
            code = code.merge(ExitCode::SafetyStop);
        }
        Some(StopReason::NoToken { why }) => {
            summary.stopped = Some(format!(
                "stopped: no access token could be had ({why}); rows not sent are marked \
                 skipped: resume once the issuer answers"
            ));
            code = code.merge(ExitCode::SafetyStop);
        }
        None => {}
    }
    let final_in_mode = is_final_in(cfg.mode);
    if whole_job.nonzero().any(|(s, _)| !final_in_mode(s)) {
        summary.resume_command = resume_command(&cfg);
    }
    summary.exit_code = code.code();
    invocation::record(
        &cfg.output.report,
        &mut summary,
        invocation::Facts {
            started,
            identity: Some(shared.tokens.identity()),
            input_sha256: scan.sha256.clone(),
            rate_per_second: Some(cfg.rate.as_per_second()),
            resume: cfg.resume,
        },
    );
    if let Err(e) = super::publish(&summary, &cfg.output) {
        // Requests were sent: not the "nothing was sent" exit 2.
        errln!("error: {e:#}");
        code = code.merge(ExitCode::RowFailures);
    }
    Ok(code)
}

/// First Ctrl-C (or SIGTERM): stop dispatching, let requests in flight finish, account for
/// the rest. Second: exit at once; the report stays valid up to its last complete row.
/// Messages go through `notices`, above the progress bar; they are printed after the stop, so
/// that an output that fails or blocks (a closed pipe) can never keep the run going.
async fn handle_interrupts(shared: Arc<Shared>, notices: Notices, quiet: bool) {
    if !next_signal().await {
        return;
    }
    shared.stop(StopReason::Interrupted);
    shared.abort.cancel();
    if !quiet {
        notices.say(
            "Interrupted: no new rows start; requests in flight finish (at most --timeout). \
             Press Ctrl-C again to exit at once.",
        );
    }
    if next_signal().await {
        notices.say(
            "Exiting at once; the report is valid up to its last complete row. Resume with --resume.",
        );
        std::process::exit(i32::from(ExitCode::Interrupted.code()));
    }
}

/// Waits for SIGINT or SIGTERM; false if signals cannot be watched.
async fn next_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return false;
        };
        tokio::select! {
            _ = int.recv() => true,
            _ = term.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// The command line that continues this run: as typed, plus `--resume`, minus `--overwrite`.
fn resume_command(cfg: &RunConfig) -> Option<String> {
    let args = cfg.invocation.as_ref()?;
    let mut out: Vec<String> = args
        .iter()
        .filter(|a| a.as_str() != "--overwrite")
        .map(|a| shell_quote(a))
        .collect();
    if !args.iter().any(|a| a == "--resume") {
        out.push("--resume".to_string());
    }
    Some(out.join(" "))
}

/// POSIX shell quoting: plain words stay as they are, anything else goes in single quotes.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("--rate"), "--rate");
        assert_eq!(shell_quote("/data/leavers.csv"), "/data/leavers.csv");
        assert_eq!(shell_quote("my file.csv"), "'my file.csv'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn each_mode_treats_its_own_outcome_as_final() {
        let disable = Mode::Patch {
            to: TokenState::Disabled,
            dry_run: false,
        };
        let enable = Mode::Patch {
            to: TokenState::Enabled,
            dry_run: false,
        };
        let enable_dry = Mode::Patch {
            to: TokenState::Enabled,
            dry_run: true,
        };
        assert!(is_final_in(disable)(Status::Disabled));
        assert!(!is_final_in(disable)(Status::Enabled));
        assert!(is_final_in(enable)(Status::Enabled));
        assert!(!is_final_in(enable)(Status::Disabled));
        assert!(is_final_in(enable_dry)(Status::WouldEnable));
        assert!(!is_final_in(enable_dry)(Status::Enabled));
        assert!(is_final_in(disable)(Status::Absent) && !is_final_in(disable)(Status::Failed));
        assert!(!is_final_in(Mode::Delete { verify: false })(
            Status::Disabled
        ));
        assert_eq!(report_mode(enable_dry), ReportMode::EnableDryRun);
        assert_eq!(command_name(disable), "disable");
    }

    #[test]
    fn dry_runs_treat_would_delete_as_final() {
        assert!(is_final_in(Mode::DryRun)(Status::WouldDelete));
        assert!(!is_final_in(Mode::Delete { verify: false })(
            Status::WouldDelete
        ));
        assert!(!is_final_in(Mode::Delete { verify: false })(
            Status::NotFound
        ));
    }
}
