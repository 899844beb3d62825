//! `report REPORT`: the whole job's summary from a report and its sidecar (resumed reports too:
//! the latest line per row counts), and on request the compact report (`--compact`), the
//! summary JSON (`--json`) and the audit page (`--html`). Reads only; sends nothing.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::config::ReportConfig;
use crate::console::{self, errln};
use crate::exit_codes::ExitCode;
use crate::report::files;
use crate::report::html;
use crate::report::job::{Job, fix_for, visible};
use crate::report::lock::lock_path;
use crate::report::meta::sidecar_path;
use crate::report::row::COLUMNS;
use crate::report::status::Status;

pub fn report(cfg: ReportConfig) -> anyhow::Result<ExitCode> {
    check_outputs(&cfg)?;
    let job = Job::read(&cfg.report)?;
    check_job_input(&cfg, &job)?;
    if !cfg.quiet {
        warn_about(&job);
    }
    if let Some(out) = &cfg.compact {
        write_compact(&job, out)?;
        if !cfg.quiet {
            errln!(
                "Wrote {} ({} rows, input order)",
                out.display(),
                job.tally.total()
            );
        }
    }
    if let Some(out) = &cfg.html {
        html::write(&job, out)?;
        if !cfg.quiet {
            errln!("Wrote the audit page {}", out.display());
        }
    }
    if cfg.json {
        let mut json = job.to_doc().to_json().context("encoding the summary")?;
        json.push(b'\n');
        console::write_out_bytes(&json);
    } else if !cfg.quiet {
        let mut text = Vec::new();
        let _ = print(&job, &mut text);
        console::write_out_bytes(&text);
    }
    Ok(job.exit_code())
}

/// Refuses, before reading anything, an output that would land on the report, its sidecar or
/// lock file, on the other output, on a symlink, or on an existing file without --overwrite.
fn check_outputs(cfg: &ReportConfig) -> anyhow::Result<()> {
    let sidecar = sidecar_path(&cfg.report);
    let lock = lock_path(&cfg.report);
    let mut taken = vec![
        (cfg.report.as_path(), "the report"),
        (sidecar.as_path(), "the report's sidecar"),
        (lock.as_path(), "the report's lock file"),
    ];
    if let Some(out) = &cfg.compact {
        files::check_output(
            "--compact",
            "the compact report",
            out,
            cfg.overwrite,
            &taken,
        )?;
        taken.push((out.as_path(), "the --compact file"));
    }
    if let Some(out) = &cfg.html {
        files::check_output("--html", "the audit page", out, cfg.overwrite, &taken)?;
    }
    Ok(())
}

/// Refuses an output on the job's own input (the file the sidecar names): with --overwrite,
/// the compact report or the page would replace the HR file the job was run from.
fn check_job_input(cfg: &ReportConfig, job: &Job) -> anyhow::Result<()> {
    let Some(input) = job.meta.as_ref().map(|m| Path::new(&m.input)) else {
        return Ok(());
    };
    for (flag, out) in [("--compact", &cfg.compact), ("--html", &cfg.html)] {
        if let Some(out) = out
            && files::same_file(out, input)
        {
            anyhow::bail!(
                "{flag} {} is the job's input file (the report's sidecar names it): choose \
                 another path",
                out.display()
            );
        }
    }
    Ok(())
}

const RESAVED: &str = "the report starts with a byte-order mark, which ds100-offboard \
     never writes: another program (a spreadsheet?) saved it again, and values such as serials \
     may differ from what was sent (leading zeros). Use the file the tool wrote.";

/// What the reader of the summary should know about the files themselves.
fn warn_about(job: &Job) {
    if let Some(why) = &job.meta_problem {
        errln!(
            "warning: the report's sidecar cannot be used ({}); tenant, mode and identity are unknown",
            visible(why)
        );
    } else if job.meta.is_none() {
        errln!(
            "warning: no sidecar next to the report ({}): tenant, mode, identity and input are unknown",
            sidecar_path(&job.path).display()
        );
    }
    if job.resaved {
        errln!("warning: {}", RESAVED);
    }
    if let Some(d) = &job.damaged_tail {
        errln!(
            "warning: the report's last line (line {}) is incomplete: {}. It is not counted; a \
             --resume sends that row again.",
            d.line,
            visible(&d.why)
        );
    }
}

/// Writes the latest line of every row, in row order, with the report's header: the report
/// the job would have written in one go. Cells are copied as the report holds them.
fn write_compact(job: &Job, out: &Path) -> anyhow::Result<()> {
    files::write_atomic_with(out, |file| {
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(std::io::BufWriter::new(file));
        csv.write_record(COLUMNS)?;
        job.for_each_latest(|record, _| {
            csv.write_record(record)?;
            Ok(())
        })?;
        csv.flush()?;
        Ok(())
    })
    .with_context(|| format!("cannot write --compact {}", out.display()))
}

/// The human summary.
fn print(job: &Job, out: &mut dyn Write) -> std::io::Result<()> {
    let shown = job.path.canonicalize().unwrap_or_else(|_| job.path.clone());
    writeln!(out, "Report {}", shown.display())?;
    let field = |out: &mut dyn Write, name: &str, value: Option<&str>| -> std::io::Result<()> {
        writeln!(
            out,
            "  {name:<16} {}",
            value.map_or_else(|| "(unknown)".into(), visible)
        )
    };
    let meta = job.meta.as_ref();
    field(out, "mode", meta.map(|m| m.mode.as_str()))?;
    if meta.is_none_or(|m| m.tenant.is_some()) {
        field(out, "tenant", meta.and_then(|m| m.tenant.as_deref()))?;
        field(out, "identity", meta.and_then(|m| m.identity.as_deref()))?;
    }
    field(out, "input", meta.map(|m| m.input.as_str()))?;
    field(
        out,
        "input sha256",
        meta.and_then(|m| m.input_sha256.as_deref()),
    )?;
    field(out, "started", job.started_at().as_deref())?;
    field(out, "finished", job.finished_at().as_deref())?;
    if let Some(m) = meta
        && !m.invocations.is_empty()
    {
        writeln!(out, "  commands         {}", m.invocations.len())?;
        for (i, inv) in m.invocations.iter().enumerate() {
            let mut parts = vec![format!(
                "{} {} → {}",
                visible(&inv.command),
                visible(&inv.started_at),
                visible(&inv.finished_at)
            )];
            if let Some(n) = inv.requests_sent
                && inv.command != "validate"
            {
                parts.push(format!(
                    "{n} requests, {} answered 429",
                    inv.throttled_429.unwrap_or(0)
                ));
            }
            if let Some(rate) = inv.final_rate_per_second {
                parts.push(format!(
                    "final rate {}",
                    crate::report::summary::final_rate(rate, inv.rate_per_second)
                ));
            }
            if let Some(code) = inv.exit_code {
                parts.push(format!("exit {code}"));
            }
            writeln!(
                out,
                "    {:<14} {}",
                format!("#{}", i + 1),
                parts.join(", ")
            )?;
        }
    }
    let resumed = if job.n_lines > job.tally.total() {
        " (several lines for some rows: the latest line per row counts)"
    } else {
        ""
    };
    writeln!(out, "  lines            {}{resumed}", job.n_lines)?;
    writeln!(out, "  rows             {}", job.n_rows)?;
    for (status, n) in job.tally.nonzero() {
        writeln!(out, "  {:<16} {n}", status.as_str())?;
    }
    let missing = job.n_missing();
    if missing > 0 {
        let ranges: Vec<String> = job
            .missing_ranges(5)
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        if ranges.is_empty() {
            writeln!(
                out,
                "  no line          {missing} (the job read a report as input, whose row \
                 numbers have gaps: which rows, only a --resume can tell)"
            )?;
        } else {
            writeln!(
                out,
                "  no line          {missing} (rows {}{})",
                ranges.join(", "),
                if missing > ranges.len() as u64 {
                    ", …"
                } else {
                    ""
                }
            )?;
        }
    }
    writeln!(out, "  report sha256    {}", job.sha256)?;
    let n = job.n_attention();
    if job.n_rows == 0 {
        writeln!(
            out,
            "  result           the report has no rows: it does not show that anything was \
             done (exit 1)"
        )?;
    } else if n == 0 {
        writeln!(out, "  result           every row ok (exit 0)")?;
    } else {
        writeln!(out, "  result           {n} row(s) need attention (exit 1)")?;
        let needing: Vec<Option<Status>> = Status::ALL
            .into_iter()
            .filter(|s| !s.is_ok() && job.tally.get(*s) > 0)
            .map(Some)
            .chain((missing > 0).then_some(None))
            .collect();
        for status in needing {
            let name = status.map_or("no line", Status::as_str);
            writeln!(out, "  {name:<16} {}", fix_for(status))?;
        }
    }
    Ok(())
}
