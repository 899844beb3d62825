//! The audit page (`report REPORT --html OUT.html`): one self-contained HTML file for a change
//! ticket — the job's facts, the outcome as a bar chart, rows finished over time, and the rows
//! that need attention with what to do about them.
//!
//! Self-contained means inline CSS and SVG only: no script, no font, image or stylesheet
//! fetched from anywhere, so the page shows the same in a mail client, offline and in ten
//! years, and opening it contacts no one. Everything from the report and the sidecar is
//! attacker-influenced (cells come from the input file and the tenant's answers), so it only
//! ever reaches the page through maud's escaping, after `visible` has made hidden characters
//! visible.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::files;
use super::job::{Job, fix_for, visible};
use super::meta::{Invocation, ReportMode};
use super::row::ReportRow;
use super::status::Status;
use super::summary::Tally;
use super::timeline::Timeline;
use crate::rate::Rate;

/// Rows shown in the table of rows needing attention; the page says when there are more.
pub(crate) const TABLE_CAP: usize = 1_000;
/// Bins of the timeline at most (about one per 5 px of the chart).
const MAX_BINS: usize = 130;
/// Characters of a cell shown in the table; longer ones are cut with a mark.
const CELL_CAP: usize = 400;

/// Writes the page for `job` to `out`, replacing it whole.
pub(crate) fn write(job: &Job, out: &Path) -> anyhow::Result<()> {
    let rows = job.attention_rows(TABLE_CAP)?;
    let (timeline, unsent) = job.timeline(MAX_BINS)?;
    let page = render(job, &rows, &timeline, &unsent, SystemTime::now());
    files::write_atomic(out, page.into_string().as_bytes())
        .with_context(|| format!("cannot write --html {}", out.display()))
}

const CSS: &str = r#"
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 10pt/1.4 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1d232b;
       margin: 0 auto; padding: 10mm 6mm; max-width: 250mm; background: #fff; }
h1 { font-size: 17pt; margin: 0; letter-spacing: -0.01em; }
h2 { font-size: 11.5pt; margin: 7mm 0 2mm; padding-bottom: 1mm; border-bottom: 1.5px solid #1d3557;
     color: #1d3557; break-after: avoid; }
.sub { color: #5b6573; margin: 1mm 0 4mm; font-size: 9pt; }
.verdict { padding: 3mm 4mm; border-radius: 2mm; font-weight: 600; font-size: 11pt; margin: 3mm 0; }
.verdict.ok { background: #e7f4ea; color: #1b5e20; border: 1px solid #a5d6a7; }
.verdict.bad { background: #fdecea; color: #8e1b1b; border: 1px solid #f1a9a0; }
.verdict span { font-weight: 400; font-size: 9pt; color: #3c4450; display: block; margin-top: 1mm; }
table { border-collapse: collapse; width: 100%; }
table.facts th { text-align: left; font-weight: 600; color: #3c4450; width: 33mm;
                 vertical-align: top; padding: 0.8mm 3mm 0.8mm 0; white-space: nowrap; }
table.facts td { padding: 0.8mm 0; word-break: break-all; }
.mono { font-family: "DejaVu Sans Mono", Consolas, Menlo, monospace; font-size: 8.5pt; }
.muted { color: #6b7480; }
table.grid { font-size: 8.5pt; }
table.grid th { background: #eef1f5; text-align: left; padding: 1.2mm 1.5mm; border-bottom: 1px solid #c9d1db; }
table.grid td { padding: 1mm 1.5mm; border-bottom: 1px solid #e3e7ec; vertical-align: top; }
table.grid td.n { text-align: right; white-space: nowrap; }
table.grid tr { break-inside: avoid; }
thead { display: table-header-group; }
table.fixed { table-layout: fixed; }
td.vals { overflow-wrap: anywhere; }
td.err { overflow-wrap: anywhere; }
td.t { white-space: nowrap; }
.st { display: inline-block; padding: 0 1.5mm; border-radius: 1mm; font-weight: 600; white-space: nowrap; }
.st.bad { background: #fdecea; color: #8e1b1b; }
.st.warn { background: #fff4e0; color: #7a4a00; }
.st.ok { background: #e7f4ea; color: #1b5e20; }
figure { margin: 0; break-inside: avoid; }
figcaption { font-size: 8.5pt; color: #5b6573; margin-top: 1mm; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
.legend { font-size: 8.5pt; color: #3c4450; margin: 1mm 0 0; }
.legend i { display: inline-block; width: 3mm; height: 3mm; margin: 0 1mm -0.4mm 3mm; border-radius: 0.5mm; }
.note { font-size: 9pt; background: #f6f7f9; border-left: 3px solid #9aa5b1; padding: 2mm 3mm; margin: 2mm 0; }
footer { margin-top: 8mm; padding-top: 2mm; border-top: 1px solid #d5dbe2; font-size: 8pt; color: #6b7480; }
@media print { body { padding: 0; max-width: none; font-size: 9.5pt; } td.vals { font-size: 6.8pt; } }
"#;

/// Colours of the outcome chart.
const GREEN: &str = "#43a047";
/// Ok, but nothing was changed (absent, duplicate).
const LIGHT_GREEN: &str = "#9ccc65";
const RED: &str = "#e53935";
const AMBER: &str = "#fb8c00";
const GREY: &str = "#8d99a6";

fn status_colour(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Absent | Status::Duplicate) => LIGHT_GREEN,
        Some(s) if s.is_ok() => GREEN,
        Some(Status::Skipped) | None => AMBER,
        Some(Status::Invalid) => GREY,
        _ => RED,
    }
}

fn status_class(status: Status) -> &'static str {
    match status {
        s if s.is_ok() => "ok",
        Status::Skipped | Status::Invalid => "warn",
        _ => "bad",
    }
}

/// `s` made visible and cut to `CELL_CAP` characters.
fn cell(s: &str) -> String {
    let v = visible(s);
    match v.char_indices().nth(CELL_CAP) {
        Some((cut, _)) => format!("{}… (cut; the report holds it whole)", &v[..cut]),
        None => v.into_owned(),
    }
}

/// A report cell for the page: `cell`, with links defanged (`https[:]//…`). Cells quote the
/// input and the tenant's answers; a viewer or a PDF of the page must not turn them into
/// something to click.
fn data(s: &str) -> String {
    cell(s).replace("://", "[:]//")
}

fn rfc3339_ms(ms: i64) -> String {
    let t = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `HH:MM:SS` (UTC) of `ms`.
fn clock(ms: i64) -> String {
    rfc3339_ms(ms).get(11..19).unwrap_or("").to_string()
}

/// `YYYY-MM-DD` (UTC) of `ms`.
fn date(ms: i64) -> String {
    rfc3339_ms(ms).get(..10).unwrap_or("").to_string()
}

fn parse_ms(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// "2 h 5 min", "40 s": a pause, roughly.
fn rough(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        ..=59 => format!("{s} s"),
        60..=3_599 => format!("{} min", s / 60),
        3_600..=86_399 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// A round number at or above `v`, for an axis's top.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_f(v: f64) -> String {
    format!("{v:.1}")
}

fn mode_text(mode: ReportMode) -> &'static str {
    match mode {
        ReportMode::Delete => "delete (run): credentials were deleted",
        ReportMode::DryRun => "dry run: read-only, nothing was deleted",
        ReportMode::Validate => "validate: offline check, nothing was sent",
        ReportMode::Disable => "disable: credentials were disabled (reversible with enable)",
        ReportMode::DisableDryRun => "disable dry run: read-only, nothing was disabled",
        ReportMode::Enable => "enable: credentials were enabled",
        ReportMode::EnableDryRun => "enable dry run: read-only, nothing was enabled",
    }
}

/// The page.
pub(crate) fn render(
    job: &Job,
    rows: &[ReportRow],
    timeline: &Timeline,
    unsent: &Tally,
    generated: SystemTime,
) -> Markup {
    let meta = job.meta.as_ref();
    let name = job
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown_path = job
        .path
        .canonicalize()
        .unwrap_or_else(|_| job.path.clone())
        .to_string_lossy()
        .into_owned();
    let n_attention = job.n_attention();
    let unknown = html! { span.muted { "unknown (no usable sidecar)" } };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Audit: " (cell(&name)) " — ds100-offboard" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "DS100 credential removal — audit" }
                    p.sub {
                        "Report " span.mono { (cell(&name)) }
                        @if let Some(m) = meta { " · " (mode_text(m.mode)) }
                    }
                    @if job.n_rows == 0 {
                        div.verdict.bad id="verdict" {
                            "No rows"
                            span { "The report holds no row: it does not show that anything was done." }
                        }
                    } @else if n_attention == 0 {
                        div.verdict.ok id="verdict" {
                            "Every row ok: " (number(job.n_rows)) " of " (number(job.n_rows)) " rows"
                            span { "Every input row has a line in the report and its latest status needs no action." }
                        }
                    } @else {
                        div.verdict.bad id="verdict" {
                            (number(n_attention)) " of " (number(job.n_rows)) " rows need attention"
                            span { "See “What to do” and the table of rows below." }
                        }
                    }
                }
                @if job.resaved {
                    p.note id="resaved" { "This report was saved again by another program after the tool wrote it (it starts with a byte-order mark, which the tool never writes). Values such as serials may differ from what was sent: a spreadsheet drops leading zeros." }
                }
                @if job.meta_problem.is_some() || meta.is_none() || job.damaged_tail.is_some() {
                    @if let Some(why) = &job.meta_problem {
                        p.note { "The report's sidecar cannot be used (" (cell(why)) "): tenant, mode and identity are unknown." }
                    } @else if meta.is_none() {
                        p.note { "No sidecar next to the report: tenant, mode, identity and input are unknown." }
                    }
                    @if let Some(d) = &job.damaged_tail {
                        p.note { "The report's last line (line " (d.line) ") is incomplete: " (cell(&d.why)) ". It is not counted." }
                    }
                }
                h2 { "The job" }
                table.facts id="facts" {
                    tr { th { "Tenant" } td.mono id="tenant" { @match meta.and_then(|m| m.tenant.as_deref()) { Some(t) => (cell(t)), None => @if meta.is_some() { span.muted { "none (offline)" } } @else { (unknown) } } } }
                    tr { th { "Identity" } td.mono { @match meta.and_then(|m| m.identity.as_deref()) { Some(t) => (cell(t)), None => @if meta.is_some() { span.muted { "none (offline)" } } @else { (unknown) } } } }
                    tr { th { "Input" } td.mono { @match meta { Some(m) => (cell(&m.input)), None => (unknown) } } }
                    tr { th { "Input SHA-256" } td.mono { @match meta.and_then(|m| m.input_sha256.as_deref()) { Some(t) => (cell(t)), None => (unknown) } } }
                    tr { th { "Report" } td.mono { (cell(&shown_path)) } }
                    tr { th { "Report SHA-256" } td.mono { (job.sha256) } }
                    tr { th { "Started" } td { @match job.started_at() { Some(t) => (t), None => (unknown) } } }
                    tr { th { "Finished" } td { @match job.finished_at() { Some(t) => (t), None => (unknown) } } }
                    tr { th { "Rows" } td id="rows" { (number(job.n_rows)) " input rows, " (number(job.n_lines)) " report lines"
                        @if job.n_lines > job.tally.total() { " (a resumed job: the latest line per row counts)" } } }
                    tr { th { "Made by" } td { @match meta { Some(m) => { (cell(&m.tool)) " " (cell(&m.tool_version)) }, None => (unknown) } } }
                }
                @if let Some(m) = meta.filter(|m| !m.invocations.is_empty()) {
                    h2 { "Commands that wrote the report" }
                    (invocations_table(&m.invocations))
                }
                h2 { "Outcome" }
                figure {
                    (outcome_chart(job))
                    figcaption { "Latest status of every input row. Green: ok (light: nothing to change); red: needs attention; amber: not attempted or no line; grey: invalid (never sent)." }
                }
                h2 { "Rows finished over time" }
                (timeline_figure(timeline, unsent, meta.map(|m| m.invocations.as_slice()).unwrap_or(&[])))
                @if n_attention > 0 {
                    h2 { "What to do" }
                    (fixes_table(job))
                    h2 { "Rows needing attention" }
                    @let shown = rows.len() as u64;
                    @let with_line = job.tally.failures();
                    @if with_line > shown {
                        p.note id="table-cap" { "The table shows the first " (number(shown)) " of " (number(with_line)) " rows needing attention, in row order. "
                            "All of them: " span.mono { "ds100-offboard report " (cell(&name)) " --compact FILE.csv" } ", then filter the status column." }
                    }
                    @if with_line > 0 {
                        (attention_table(rows))
                    }
                }
                footer {
                    "Made by " (env!("CARGO_PKG_NAME")) " " (env!("CARGO_PKG_VERSION")) " on "
                    (humantime::format_rfc3339_seconds(generated).to_string())
                    " from the report and its sidecar. The report is the record; this page summarises it "
                    "(the latest line per input row counts). Times are UTC; links quoted in report cells are "
                    "shown defanged ([:]//)."
                }
            }
        }
    }
}

fn invocations_table(invocations: &[Invocation]) -> Markup {
    let opt_n = |v: Option<u64>| v.map_or_else(|| "—".to_string(), number);
    let opt_rate = |v: Option<f64>| v.map_or_else(|| "—".to_string(), Rate::show);
    html! {
        table.grid id="commands" {
            thead { tr {
                th { "#" } th { "Command" } th { "Started" } th { "Finished" }
                th.n { "Rows sent" } th.n { "Requests" } th.n { "429s" } th.n { "Rate" } th.n { "Final rate" } th.n { "Exit" }
            } }
            tbody {
                @for (i, inv) in invocations.iter().enumerate() {
                    tr {
                        td.n { (i + 1) }
                        td { (cell(&inv.command)) @if let Some(why) = &inv.stopped { br; span.muted { (cell(why)) } } }
                        td.t { (cell(&inv.started_at.replacen('T', " ", 1))) }
                        td.t { (cell(&inv.finished_at.replacen('T', " ", 1))) }
                        td.n { (opt_n(inv.rows_sent)) }
                        td.n { (opt_n(inv.requests_sent)) }
                        td.n { (opt_n(inv.throttled_429)) }
                        td.n { (opt_rate(inv.rate_per_second)) }
                        td.n { (opt_rate(inv.final_rate_per_second)) }
                        td.n { @match inv.exit_code { Some(c) => (c), None => "—" } }
                    }
                }
            }
        }
    }
}

/// Horizontal bars: one per status present (and one for rows with no line).
fn outcome_chart(job: &Job) -> Markup {
    let mut bars: Vec<(Option<Status>, u64)> =
        job.tally.nonzero().map(|(s, n)| (Some(s), n)).collect();
    if job.n_missing() > 0 {
        bars.push((None, job.n_missing()));
    }
    let width = 680.0;
    let label_w = 100.0;
    let count_w = 90.0;
    let bar_h = 18.0;
    let gap = 6.0;
    let top = 4.0;
    let height = top + (bar_h + gap) * bars.len().max(1) as f64;
    let most = bars.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let scale = (width - label_w - count_w) / most;
    let total = job.n_rows.max(1) as f64;
    html! {
        svg id="outcome" viewBox=(format!("0 0 {width} {height}")) role="img" aria-label="Rows per latest status" {
            @if bars.is_empty() {
                text x="0" y="14" font-size="11" fill="#6b7480" { "The report holds no rows." }
            }
            @for (i, (status, n)) in bars.iter().enumerate() {
                @let y = top + (bar_h + gap) * i as f64;
                @let w = (*n as f64 * scale).max(1.5);
                @let name = status.map_or("no line", Status::as_str);
                g class="bar" data-status=(name) data-count=(n) {
                    text x=(label_w - 8.0) y=(y + bar_h * 0.72) font-size="11" text-anchor="end" fill="#1d232b" { (name) }
                    rect x=(label_w) y=(y) width=(fmt_f(w)) height=(bar_h) rx="2" fill=(status_colour(*status)) {}
                    text x=(fmt_f(label_w + w + 6.0)) y=(y + bar_h * 0.72) font-size="11" fill="#1d232b" {
                        (number(*n)) tspan fill="#6b7480" { " (" (format!("{:.1}", *n as f64 * 100.0 / total)) " %)" }
                    }
                }
            }
        }
    }
}

/// The timeline chart with its caption and legend.
fn timeline_figure(t: &Timeline, unsent: &Tally, invocations: &[Invocation]) -> Markup {
    let not_sent = html! {
        @if unsent.total() > 0 {
            " Lines of rows that sent nothing are not drawn: "
            @for (k, (status, n)) in unsent.nonzero().enumerate() {
                @if k > 0 { ", " }
                (number(n)) " " (status.as_str())
            }
            "."
        }
    };
    if t.segments.is_empty() {
        return html! { p.muted { "No row of this report sent a request, so there is nothing to show over time." (not_sent) } };
    }
    let width = 680.0;
    let height = 210.0;
    let (left, right, top, bottom) = (44.0, 12.0, 26.0, 34.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let break_w = 30.0;
    let n_bins = t.n_bins().max(1) as f64;
    let bin_w = (plot_w - break_w * (t.segments.len() - 1) as f64) / n_bins;
    let per_s = 1000.0 / t.width as f64;
    let peak = t.peak_per_second();
    // The configured rate is drawn when it fits the scale of what happened; a rate far above
    // (a rehearsal at 2000/s) would flatten every bar.
    let rates: Vec<f64> = invocations
        .iter()
        .filter_map(|i| i.rate_per_second)
        // The sidecar is a file: only a positive rate is drawn.
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 4.0 * peak.max(1.0))
        .collect();
    let top_value = rates.iter().copied().fold(peak, f64::max).max(1.0) * 1.05;
    let step = nice_ceiling(top_value / 4.0);
    let n_ticks = (top_value / step).ceil().max(1.0) as u32;
    let y_max = step * f64::from(n_ticks);
    let y = |v: f64| top + plot_h - (v / y_max * plot_h);
    // Segment x offsets.
    let mut xs = Vec::with_capacity(t.segments.len());
    let mut x = left;
    for seg in &t.segments {
        xs.push(x);
        x += seg.bins.len() as f64 * bin_w + break_w;
    }
    let x_of = |ms: i64| -> Option<f64> {
        t.segments.iter().zip(&xs).find_map(|(seg, x0)| {
            (ms >= seg.start && ms <= seg.end(t.width))
                .then(|| x0 + (ms - seg.start) as f64 / t.width as f64 * bin_w)
        })
    };
    let ticks: Vec<f64> = (0..=n_ticks).map(|i| step * f64::from(i)).collect();
    let width_label = if t.width >= 60_000 {
        format!("{} min", t.width / 60_000)
    } else {
        format!("{} s", t.width / 1000)
    };
    let total_retried: u64 = t
        .segments
        .iter()
        .flat_map(|s| &s.bins)
        .map(|b| u64::from(b.retried))
        .sum();
    let total_429: u64 = invocations.iter().filter_map(|i| i.throttled_429).sum();
    html! {
        figure {
            svg id="timeline" viewBox=(format!("0 0 {width} {height}")) role="img" aria-label="Rows finished per second over the job" {
                // Axis and grid.
                @for v in &ticks {
                    line x1=(left) x2=(width - right) y1=(fmt_f(y(*v))) y2=(fmt_f(y(*v))) stroke="#e3e7ec" stroke-width="1" {}
                    text x=(left - 5.0) y=(fmt_f(y(*v) + 3.5)) font-size="9" text-anchor="end" fill="#5b6573" { (format_axis(*v, step)) }
                }
                text x="4" y=(top - 12.0) font-size="9" fill="#5b6573" { "rows/s" }
                @for (i, (seg, x0)) in t.segments.iter().zip(&xs).enumerate() {
                    @for (j, bin) in seg.bins.iter().enumerate() {
                        @let bx = x0 + j as f64 * bin_w;
                        @let ok_h = f64::from(bin.ok) * per_s / y_max * plot_h;
                        @let bad_h = f64::from(bin.attention) * per_s / y_max * plot_h;
                        @let w = (bin_w - if bin_w > 3.0 { 0.6 } else { 0.0 }).max(0.5);
                        @if bin.ok > 0 {
                            rect x=(fmt_f(bx)) y=(fmt_f(top + plot_h - ok_h)) width=(fmt_f(w)) height=(fmt_f(ok_h)) fill=(GREEN) {}
                        }
                        @if bin.attention > 0 {
                            rect x=(fmt_f(bx)) y=(fmt_f(top + plot_h - ok_h - bad_h)) width=(fmt_f(w)) height=(fmt_f(bad_h)) fill=(RED) {}
                        }
                        @if bin.retried > 0 {
                            circle cx=(fmt_f(bx + w / 2.0)) cy=(fmt_f(top + plot_h - ok_h - bad_h - 4.0)) r="2.2" fill=(AMBER) {}
                        }
                    }
                    // Time labels under each stretch of activity.
                    @let x1 = x0 + seg.bins.len() as f64 * bin_w;
                    line x1=(fmt_f(*x0)) x2=(fmt_f(x1)) y1=(top + plot_h) y2=(top + plot_h) stroke="#3c4450" stroke-width="1" {}
                    text x=(fmt_f(*x0)) y=(top + plot_h + 12.0) font-size="9" fill="#3c4450" { (clock(seg.start)) }
                    @if i == 0 || date(seg.start) != date(t.segments[i - 1].start) {
                        text x=(fmt_f(*x0)) y=(top + plot_h + 23.0) font-size="8.5" fill="#6b7480" { (date(seg.start)) " UTC" }
                    }
                    @if x1 - x0 > 90.0 {
                        text x=(fmt_f(x1)) y=(top + plot_h + 12.0) font-size="9" text-anchor="end" fill="#3c4450" { (clock(seg.end(t.width))) }
                    }
                    @if let Some(next) = t.segments.get(i + 1) {
                        @let mid = x1 + break_w / 2.0;
                        line x1=(fmt_f(mid - 4.0)) x2=(fmt_f(mid + 1.0)) y1=(top + plot_h + 4.0) y2=(top + plot_h - 4.0) stroke="#3c4450" {}
                        line x1=(fmt_f(mid - 1.0)) x2=(fmt_f(mid + 4.0)) y1=(top + plot_h + 4.0) y2=(top + plot_h - 4.0) stroke="#3c4450" {}
                        text x=(fmt_f(mid)) y=(top + plot_h - 8.0) font-size="7.5" text-anchor="middle" fill="#6b7480" { "+" (rough(next.start - seg.end(t.width))) }
                    }
                }
                // The commands: where each started sending, its --rate and 429s, its final rate.
                @for (k, inv) in invocations.iter().enumerate() {
                    @let end = parse_ms(&inv.finished_at);
                    @let start = end.map(|e| e - (inv.elapsed_seconds.unwrap_or(0.0) * 1000.0) as i64);
                    @if let Some(sx) = start.and_then(&x_of).or_else(|| start.and_then(|s| x_of(s.max(t.segments[0].start)))) {
                        line x1=(fmt_f(sx)) x2=(fmt_f(sx)) y1=(top - 4.0) y2=(top + plot_h) stroke="#1d3557" stroke-width="1" stroke-dasharray="2 2" {}
                        text x=(fmt_f(sx + 3.0)) y=(top - 6.0) font-size="9" fill="#1d3557" {
                            "#" (k + 1) " " (cell(&inv.command))
                            @if let Some(n) = inv.throttled_429.filter(|n| *n > 0) { tspan fill=(AMBER) font-weight="600" { " · 429 × " (n) } }
                        }
                        @if let (Some(r), Some(ex)) = (inv.rate_per_second.filter(|r| rates.contains(r)), end.and_then(&x_of)) {
                            line x1=(fmt_f(sx)) x2=(fmt_f(ex.max(sx + 2.0))) y1=(fmt_f(y(r))) y2=(fmt_f(y(r))) stroke="#1d3557" stroke-width="1.2" stroke-dasharray="6 3" {}
                            text x=(fmt_f(ex.max(sx + 2.0) - 2.0)) y=(fmt_f(y(r) - 3.0)) font-size="8.5" text-anchor="end" fill="#1d3557" { "--rate " (Rate::per_second(r).to_string()) }
                        }
                        @if let (Some(f), Some(ex)) = (inv.final_rate_per_second.filter(|f| *f <= y_max), end.and_then(&x_of)) {
                            path d=(format!("M{:.1} {:.1} l-4 -4 l0 8 z", ex, y(f))) fill="#1d3557" {}
                        }
                    }
                }
            }
            figcaption {
                "Rows that sent requests, finished per second (bins of " (width_label) "); superseded lines of a resumed job included. Stretches more than five minutes apart are shown side by side, the pause marked."
                (not_sent)
            }
            p.legend {
                i style=(format!("background:{GREEN}")) {} "ok"
                i style=(format!("background:{RED}")) {} "needs attention"
                i style=(format!("background:{AMBER};border-radius:50%")) {} "rows whose DELETE was retried (429, 5xx, timeout): " (number(total_retried))
                @if !invocations.is_empty() {
                    " · dashed: where a command started sending and its --rate (requests/s); ▸ its final rate · 429s recorded: " (number(total_429))
                }
            }
        }
    }
}

fn format_axis(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn fixes_table(job: &Job) -> Markup {
    let mut needing: Vec<(Option<Status>, u64)> = Status::ALL
        .into_iter()
        .filter(|s| !s.is_ok() && job.tally.get(*s) > 0)
        .map(|s| (Some(s), job.tally.get(s)))
        .collect();
    if job.n_missing() > 0 {
        needing.push((None, job.n_missing()));
    }
    let ranges = job.missing_ranges(20);
    html! {
        table.grid id="fixes" {
            thead { tr { th { "Status" } th.n { "Rows" } th { "What to do" } } }
            tbody {
                @for (status, n) in &needing {
                    tr {
                        td { span class=(format!("st {}", status.map_or("warn", status_class))) { (status.map_or("no line", Status::as_str)) } }
                        td.n { (number(*n)) }
                        td { (fix_for(*status))
                            @if status.is_none() && ranges.is_empty() {
                                br; span.muted { "The job read a report as input, whose row numbers have gaps: which rows have no line, only a --resume can tell." }
                            } @else if status.is_none() {
                                br; span.muted { "Rows without a line: "
                                    @for (k, (a, b)) in ranges.iter().enumerate() {
                                        @if k > 0 { ", " }
                                        @if a == b { (a) } @else { (a) "–" (b) }
                                    }
                                    @if job.n_missing() > ranges.iter().map(|(a, b)| b - a + 1).sum::<u64>() { ", …" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn attention_table(rows: &[ReportRow]) -> Markup {
    html! {
        table.grid.fixed id="attention" {
            colgroup {
                col style="width:6%" {} col style="width:6%" {} col style="width:33%" {}
                col style="width:11%" {} col style="width:10%" {} col style="width:34%" {}
            }
            thead { tr {
                th.n { "Row" } th.n { "Line" } th { "Token · device · user" } th { "Status" } th { "HTTP" } th { "Error" }
            } }
            tbody {
                @for r in rows {
                    tr data-row=(r.row) {
                        td.n.row { (r.row) }
                        td.n.line { (r.line) }
                        td.vals.mono {
                            span.token { (data(&r.token)) } br;
                            span.device { (data(&r.device)) } br;
                            span.user { (data(&r.user)) }
                            @if !r.email.is_empty() { br; span.email { (data(&r.email)) } }
                            @if !r.resolved.is_empty() { br; span.muted { "resolved: " (data(&r.resolved)) } }
                        }
                        td { span class=(format!("st {}", status_class(r.status))) { (r.status.as_str()) } }
                        td.n {
                            @if let Some(h) = r.http_status { "DELETE " (h) br; }
                            @if let Some(h) = r.lookup_status { span.muted { "lookup " (h) } }
                        }
                        td.err { (data(&r.error)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_axes() {
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(number(12), "12");
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(21.0), 25.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(rough(90_000), "1 min");
        assert_eq!(rough(3 * 86_400_000 + 7_200_000), "3 d 2 h");
        assert_eq!(clock(1_800_000_123_000), "08:02:03");
    }

    #[test]
    fn long_cells_are_cut_and_hidden_characters_shown() {
        let long = "x".repeat(CELL_CAP + 10);
        assert!(cell(&long).ends_with("(cut; the report holds it whole)"));
        assert_eq!(cell("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(
            data("see https://evil.example/x"),
            "see https[:]//evil.example/x"
        );
    }
}
