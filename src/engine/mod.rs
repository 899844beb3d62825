//! The pipeline: reader → bounded channel → exactly N workers → one report writer. Rows that
//! need no request (invalid, duplicate, skipped) go straight to the writer
//! (docs/design.md#the-pipeline).

pub(crate) mod adaptive;
pub(crate) mod changed;
pub(crate) mod counters;
pub(crate) mod matching;
pub(crate) mod pacer;
pub(crate) mod people;
mod request;
pub(crate) mod retry;
mod state;
pub(crate) mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{Mutex, mpsc};

use crate::input::{InputFile, InputRow, RowCheck, Scan};
use crate::progress::Progress;
use crate::report::row::ReportRow;
use crate::report::status::Status;
use crate::report::summary::Tally;
use crate::report::writer::ReportWriter;
pub(crate) use counters::Counters;
pub(crate) use request::probe_lookup;
pub(crate) use state::{Mode, Shared, StopReason};

/// How a pipeline run ended.
#[derive(Debug)]
pub(crate) struct PipelineOutcome {
    pub(crate) tally: Tally,
    pub(crate) stopped: Option<StopReason>,
    pub(crate) elapsed: Duration,
}

/// Settings of the pipeline itself (the per-request ones live in `Shared`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PipelineOptions {
    pub(crate) concurrency: usize,
}

/// Rows of the input the pipeline leaves out (`--resume`: already final in the report).
pub(crate) use crate::report::resume::RowSet;

/// Streams the rows of the plan `scan` of `input` through the workers into `writer`. Returns
/// when every input row has a report row, or when that became impossible: an I/O error, or an
/// input that is no longer the planned one (then no row past the change is sent).
pub(crate) async fn run_pipeline(
    shared: Arc<Shared>,
    input: InputFile,
    scan: Arc<Scan>,
    writer: ReportWriter,
    progress: Progress,
    opts: PipelineOptions,
    done: RowSet,
) -> anyhow::Result<PipelineOutcome> {
    let started = Instant::now();
    let n_workers = opts.concurrency.max(1);
    let (jobs_tx, jobs_rx) = mpsc::channel::<InputRow>(n_workers * 2);
    let (rows_tx, rows_rx) = mpsc::channel::<ReportRow>(1024);

    let writer_task = tokio::spawn(write_rows(shared.clone(), rows_rx, writer, progress));

    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let workers: Vec<_> = (0..n_workers)
        .map(|_| {
            tokio::spawn(worker::work(
                shared.clone(),
                jobs_rx.clone(),
                rows_tx.clone(),
            ))
        })
        .collect();

    let reader_shared = shared.clone();
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for item in input.rows(&scan)? {
            let row = item?;
            if done.contains(row.row) {
                continue;
            }
            let direct = match &row.check {
                RowCheck::Valid if reader_shared.stop.is_cancelled() => {
                    Some(reader_shared.skipped(row))
                }
                RowCheck::Valid => {
                    if let Err(mpsc::error::SendError(row)) = jobs_tx.blocking_send(row) {
                        // Every worker is gone (only after a failure elsewhere).
                        Some(reader_shared.skipped(row))
                    } else {
                        None
                    }
                }
                RowCheck::Invalid { reason } => {
                    let reason = reason.clone();
                    Some(ReportRow::unsent(row, Status::Invalid, reason))
                }
                RowCheck::Duplicate { first_row } => {
                    let note = format!("repeats row {first_row}; not sent");
                    Some(ReportRow::unsent(row, Status::Duplicate, note))
                }
            };
            if let Some(report) = direct
                && rows_tx.blocking_send(report).is_err()
            {
                anyhow::bail!("the report writer stopped early");
            }
        }
        Ok(())
    });

    let read_result = reader.await.context("the input reader panicked")?;
    if read_result.is_err() {
        // Nothing more will come; let the workers finish what they hold and stop.
        shared.stop(StopReason::Interrupted);
    }
    for w in workers {
        w.await.context("a worker panicked")?;
    }
    let (tally, write_result) = writer_task.await.context("the report writer panicked")?;
    read_result.context("reading the input")?;
    write_result?;
    Ok(PipelineOutcome {
        tally,
        stopped: shared.stop_reason.get().cloned(),
        elapsed: started.elapsed(),
    })
}

/// The one writer: owns the report file, the tally and the progress display.
async fn write_rows(
    shared: Arc<Shared>,
    mut rows_rx: mpsc::Receiver<ReportRow>,
    mut writer: ReportWriter,
    mut progress: Progress,
) -> (Tally, anyhow::Result<()>) {
    let mut tally = Tally::default();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result: anyhow::Result<()> = async {
        loop {
            tokio::select! {
                next = rows_rx.recv() => {
                    let Some(row) = next else { break };
                    let mut ready = Some(row);
                    // Write everything that is ready, then hand it to the OS in one go.
                    while let Some(row) = ready {
                        writer.write(&row)?;
                        tally.add(row.status);
                        ready = rows_rx.try_recv().ok();
                    }
                    writer.flush()?;
                    progress.update(&tally, &shared.counters);
                }
                _ = tick.tick() => {
                    writer.flush()?;
                    progress.tick(&tally, &shared.counters);
                }
            }
        }
        progress.finish(&tally, &shared.counters);
        writer.finish()
    }
    .await;
    if result.is_err() {
        // Without a report the run must not go on deleting.
        shared.stop(StopReason::Interrupted);
        shared.abort.cancel();
        while rows_rx.recv().await.is_some() {}
    }
    (tally, result)
}
