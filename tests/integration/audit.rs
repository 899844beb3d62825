//! The audit trail as an auditor uses it: `report` on single and resumed reports (summary,
//! `--compact`, `--json`, exit codes), the summary JSON schema pinned, the audit page parsed
//! and checked against the report, hostile and damaged reports, a large report in little
//! memory, and `completions` / `man` / the EXAMPLES in `--help`. Real binary, real simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::*;
use ds100_offboard::report::row::{COLUMNS, ReportRow};
use ds100_offboard::report::status::Status;
use scraper::{ElementRef, Html, Selector};
use sha2::Digest;

/// `ds100-offboard` with a clean environment for credentials.
fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(bin_path());
    for var in [
        "DS100_TOKEN",
        "DS100_BASE_URL",
        "DS100_KEY_FILE",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// A simulator accepting `TOKEN`, seeded with `creds` (written into `dir`).
fn seeded_sim(dir: &Path, creds: &[Cred], args: &[&str]) -> Sim {
    let seed = dir.join("seed.csv");
    std::fs::write(&seed, csv_of(creds)).unwrap();
    let mut all = vec!["--seed".to_string(), seed.to_string_lossy().into_owned()];
    all.extend(args.iter().map(|a| a.to_string()));
    Sim::start(&crate::harness::sim::SimSpec {
        auth: vec!["--token".into(), TOKEN.into()],
        args: all,
        env: Vec::new(),
        trace_log: None,
    })
}

/// `run INPUT --base-url SIM` with `DS100_TOKEN=TOKEN`.
fn run_cmd(sim: &Sim, input: &Path) -> assert_cmd::Command {
    let mut cmd = bin();
    cmd.arg("run")
        .arg(input)
        .args(["--base-url", &sim.url])
        .env("DS100_TOKEN", TOKEN);
    cmd
}

fn json_of(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn read_json(path: &Path) -> serde_json::Value {
    json_of(&std::fs::read(path).unwrap())
}

fn sidecar(report: &Path) -> PathBuf {
    report.with_extension("meta.json")
}

/// The latest line per row, as `report` must count them.
fn latest(report: &Path) -> BTreeMap<u64, ReportRow> {
    read_report(report)
        .into_iter()
        .map(|r| (r.row, r))
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A resumed job: a safety stop, then --resume
// ---------------------------------------------------------------------------------------------

/// Runs a job that stops after three failed DELETEs (safety stop, the rest skipped) and is
/// resumed to the end: a report with two lines for most rows.
fn resumed_job(dir: &Path) -> (Sim, PathBuf) {
    let all = creds(12, 300);
    let sim = seeded_sim(dir, &all, &["--fault", "500,first=3,on=delete"]);
    let input = write(dir, "leavers.csv", &csv_of(&all));
    let first = run_cmd(&sim, &input)
        .args(FAST)
        .args([
            "--max-attempts",
            "1",
            "--stop-after",
            "3",
            "--concurrency",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    run_cmd(&sim, &input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(0);
    (sim, dir.join("leavers.report.csv"))
}

#[test]
fn report_of_a_resumed_job_counts_the_latest_line_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, report) = resumed_job(dir.path());
    let lines = read_report(&report);
    assert_eq!(lines.len(), 24, "12 lines per command");

    let out = bin().arg("report").arg(&report).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("lines            24 (several lines"),
        "{text}"
    );
    assert!(text.contains("rows             12"), "{text}");
    assert!(text.contains("deleted          12"), "{text}");
    assert!(!text.contains("skipped"), "{text}");
    assert!(text.contains("#1             run "), "{text}");
    assert!(text.contains("exit 3"), "{text}");
    assert!(text.contains("#2             run --resume "), "{text}");
    assert!(text.contains("every row ok (exit 0)"), "{text}");

    let out = bin()
        .arg("report")
        .arg(&report)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = json_of(&out.stdout);
    assert_eq!(s["command"], "report");
    assert_eq!(s["mode"], "delete");
    assert_eq!(s["rows"], 12);
    assert_eq!(s["statuses"]["deleted"], 12);
    assert_eq!(s["failures"], 0);
    assert_eq!(s["rows_missing"], 0);
    // The invocation is the last one the sidecar recorded: the resume.
    assert_eq!(s["invocation"]["command"], "run --resume");
    assert_eq!(s["invocation"]["rows_sent"], 12);
    // The check before the plan, then the twelve DELETEs.
    assert_eq!(s["invocation"]["requests_sent"], 13);

    let meta = read_json(&sidecar(&report));
    let runs = meta["invocations"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{meta}");
    assert_eq!(runs[0]["exit_code"], 3);
    assert!(runs[0]["stopped"].as_str().unwrap().contains("safety stop"));
    assert_eq!(
        runs[0]["requests_sent"], 4,
        "the check before the plan and 3 DELETEs"
    );
    assert_eq!(runs[1]["exit_code"], 0);
    assert_eq!(meta["input_rows"], 12);
    assert_eq!(
        meta["input_sha256"].as_str().unwrap(),
        sha256_hex(&dir.path().join("leavers.csv"))
    );
}

#[test]
fn compact_writes_one_line_per_row_in_input_order_and_never_clobbers() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, report) = resumed_job(dir.path());
    let compact = dir.path().join("final.csv");
    bin()
        .arg("report")
        .arg(&report)
        .arg("--compact")
        .arg(&compact)
        .assert()
        .code(0);
    let rows = read_report(&compact);
    let latest = latest(&report);
    assert_eq!(rows.len(), 12);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.row, i as u64 + 1);
        assert_eq!(r, &latest[&r.row], "the latest line of row {}", r.row);
    }
    // The compact report is a report too: `report` reads it and agrees.
    bin().arg("report").arg(&compact).assert().code(0);

    let refused = |out: &Path, extra: &[&str], why: &str| {
        let o = bin()
            .arg("report")
            .arg(&report)
            .arg("--compact")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(why), "{why}: {err}");
    };
    let before = std::fs::read(&report).unwrap();
    refused(&report, &["--overwrite"], "is the report");
    refused(
        &sidecar(&report),
        &["--overwrite"],
        "is the report's sidecar",
    );
    refused(&compact, &[], "already exists");
    let victim = write(dir.path(), "victim.txt", "keep");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    refused(&link, &["--overwrite"], "symbolic link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(
        std::fs::read(&report).unwrap(),
        before,
        "the report untouched"
    );
    bin()
        .arg("report")
        .arg(&report)
        .arg("--compact")
        .arg(&compact)
        .arg("--overwrite")
        .assert()
        .code(0);
}

// ---------------------------------------------------------------------------------------------
// The summary JSON, schema 1
// ---------------------------------------------------------------------------------------------

/// The JSON type of a value, as the schema documents it.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_u64() => "integer",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Keys and their types, sorted by key.
fn shape(v: &serde_json::Value) -> Vec<(String, &'static str)> {
    let mut out: Vec<_> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), kind(v)))
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    let mut out: Vec<_> = list.iter().map(|(k, t)| (k.to_string(), *t)).collect();
    out.sort();
    out
}

/// Schema 1's top level, key by key, in order, with the types of a finished run.
const TOP: [(&str, &str); 21] = [
    ("schema", "integer"),
    ("tool", "string"),
    ("tool_version", "string"),
    ("command", "string"),
    ("mode", "string"),
    ("tenant", "string"),
    ("identity", "string"),
    ("input", "string"),
    ("input_sha256", "string"),
    ("report", "string"),
    ("started_at", "string"),
    ("finished_at", "string"),
    ("rows", "integer"),
    ("statuses", "object"),
    ("ok", "integer"),
    ("failures", "integer"),
    ("rows_missing", "integer"),
    ("stopped", "null"),
    ("resume_command", "null"),
    ("exit_code", "integer"),
    ("invocation", "object"),
];

const INVOCATION: [(&str, &str); 10] = [
    ("command", "string"),
    ("started_at", "string"),
    ("finished_at", "string"),
    ("elapsed_seconds", "number"),
    ("rows_sent", "integer"),
    ("rows_carried_over", "integer"),
    ("requests_sent", "integer"),
    ("throttled_429", "integer"),
    ("rate_per_second", "number"),
    ("final_rate_per_second", "number"),
];

#[test]
fn summary_json_schema_1_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(6, 400);
    let sim = seeded_sim(dir.path(), &all, &[]);
    let input = write(dir.path(), "leavers.csv", &csv_of(&all[..5]));
    let summary = dir.path().join("summary.json");
    run_cmd(&sim, &input)
        .args(FAST)
        .arg("--summary-json")
        .arg(&summary)
        .assert()
        .code(0);
    let s = read_json(&summary);
    let top = pairs(&TOP);
    assert_eq!(shape(&s), top, "{s:#}");
    assert_eq!(shape(&s["invocation"]), pairs(&INVOCATION), "{s:#}");
    let statuses: Vec<&str> = s["statuses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut every: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    every.sort_unstable();
    assert_eq!(statuses, every);

    // The values of this known run.
    let report = dir.path().join("leavers.report.csv");
    assert_eq!(s["schema"], 1);
    assert_eq!(s["tool"], "ds100-offboard");
    assert_eq!(s["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["command"], "run");
    assert_eq!(s["mode"], "delete");
    assert!(s["tenant"].as_str().unwrap().starts_with(&sim.url));
    let identity = s["identity"].as_str().unwrap();
    assert!(identity.starts_with("token sha256:"), "{identity}");
    assert!(!s.to_string().contains(TOKEN), "never the secret");
    assert_eq!(
        s["input"].as_str().unwrap(),
        input.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(s["input_sha256"].as_str().unwrap(), sha256_hex(&input));
    assert_eq!(
        s["report"].as_str().unwrap(),
        report.canonicalize().unwrap().to_str().unwrap()
    );
    for key in ["started_at", "finished_at"] {
        let t = s[key].as_str().unwrap();
        humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{key} {t}: {e}"));
        let t = s["invocation"][key].as_str().unwrap();
        humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("invocation {key} {t}: {e}"));
    }
    assert_eq!((s["rows"].as_u64(), s["ok"].as_u64()), (Some(5), Some(5)));
    assert_eq!(s["statuses"]["deleted"], 5);
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["invocation"]["requests_sent"], 6);
    assert_eq!(s["invocation"]["throttled_429"], 0);
    assert_eq!(s["invocation"]["rows_sent"], 5);
    assert_eq!(s["invocation"]["rate_per_second"], 2000.0);

    // `report --json` prints the same document from the report and its sidecar.
    let out = bin()
        .arg("report")
        .arg(&report)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r = json_of(&out.stdout);
    assert_eq!(shape(&r), top, "{r:#}");
    assert_eq!(shape(&r["invocation"]), pairs(&INVOCATION), "{r:#}");
    assert_eq!(r["command"], "report");
    for key in [
        "mode",
        "tenant",
        "identity",
        "input",
        "input_sha256",
        "report",
        "started_at",
        "rows",
        "statuses",
        "ok",
        "failures",
    ] {
        assert_eq!(r[key], s[key], "{key}");
    }
    for key in [
        "started_at",
        "finished_at",
        "elapsed_seconds",
        "rows_sent",
        "requests_sent",
        "throttled_429",
        "rate_per_second",
        "final_rate_per_second",
    ] {
        assert_eq!(
            r["invocation"][key], s["invocation"][key],
            "invocation {key}"
        );
    }

    // Without a sidecar the job's facts and the invocation are null, never guessed.
    std::fs::remove_file(sidecar(&report)).unwrap();
    let out = bin()
        .arg("report")
        .arg(&report)
        .arg("--json")
        .output()
        .unwrap();
    let r = json_of(&out.stdout);
    let keys: Vec<String> = shape(&r).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, top.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    for key in ["mode", "tenant", "identity", "input", "input_sha256"] {
        assert!(r[key].is_null(), "{key}: {r:#}");
    }
    assert!(r["invocation"]["requests_sent"].is_null());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sidecar"));

    // validate: offline, so no tenant, identity or rates.
    let vsummary = dir.path().join("validate.json");
    bin()
        .arg("validate")
        .arg(&input)
        .arg("--summary-json")
        .arg(&vsummary)
        .assert()
        .code(0);
    let v = read_json(&vsummary);
    assert_eq!(
        shape(&v).into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        top.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
    assert_eq!(v["mode"], "validate");
    assert!(v["tenant"].is_null() && v["identity"].is_null());
    assert_eq!(v["input_sha256"].as_str().unwrap(), sha256_hex(&input));
    assert!(v["invocation"]["rate_per_second"].is_null());
    assert_eq!(v["invocation"]["requests_sent"], 0);
}

// ---------------------------------------------------------------------------------------------
// The audit page
// ---------------------------------------------------------------------------------------------

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text_of(e: ElementRef<'_>) -> String {
    e.text().collect::<String>()
}

#[test]
fn the_audit_page_matches_the_report_and_fetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(14, 600);
    let failing = all[11].device.clone();
    let sim = seeded_sim(
        dir.path(),
        &all[..13],
        &[
            "--fault",
            &format!("500,every=1,on=delete,device={failing}"),
        ],
    );
    let mut rows: Vec<Cred> = all[..9].to_vec();
    // A mismatch: the device's credential belongs to someone else.
    rows[8].user = all[12].user.clone();
    // Invalid rows whose echoed values try HTML, a formula with a link, and a bidi override.
    let mut script = all[9].clone();
    script.token = "<script>alert(1)</script>".into();
    rows.push(script);
    let mut formula = all[10].clone();
    formula.token = "=HYPERLINK(\"https://evil.example/x\",\"a\")".into();
    rows.push(formula);
    rows.push(all[11].clone()); // the DELETE answered 500: failed
    rows.push(all[13].clone()); // not in the store: absent
    rows.push(all[0].clone()); // a repeat: duplicate
    let mut text = String::from("tokenSerialNumber,deviceSerialNumber,userId\n");
    let mut w = csv::Writer::from_writer(Vec::new());
    for c in &rows {
        w.write_record([&c.token, &c.device, &c.user]).unwrap();
    }
    text.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
    let input = write(dir.path(), "leavers.csv", &text);
    run_cmd(&sim, &input)
        .args(FAST)
        .args(["--max-attempts", "2"])
        .assert()
        .code(1);
    let report = dir.path().join("leavers.report.csv");
    let counts = status_counts(&report);
    assert_eq!(counts["deleted"], 8, "{counts:?}");
    assert_eq!(counts["mismatch"], 1);
    assert_eq!(counts["invalid"], 2);
    assert_eq!(counts["failed"], 1);
    assert_eq!(counts["absent"], 1);
    assert_eq!(counts["duplicate"], 1);

    let page_path = dir.path().join("audit.html");
    let out = bin()
        .arg("report")
        .arg(&report)
        .arg("--html")
        .arg(&page_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a mismatch needs attention");
    let raw = std::fs::read_to_string(&page_path).unwrap();
    let page = Html::parse_document(&raw);

    // The outcome chart: one bar per status, counts as in the report.
    let bars: BTreeMap<String, usize> = page
        .select(&sel("#outcome g.bar"))
        .map(|g| {
            (
                g.attr("data-status").unwrap().to_string(),
                g.attr("data-count").unwrap().parse().unwrap(),
            )
        })
        .collect();
    let want: BTreeMap<String, usize> = counts.clone().into_iter().collect();
    assert_eq!(bars, want);
    let verdict = text_of(page.select(&sel("#verdict")).next().unwrap());
    assert!(verdict.contains("4 of 14 rows need attention"), "{verdict}");

    // The table: exactly the rows needing attention, each with its values, status and error.
    let latest = latest(&report);
    let needing: BTreeSet<u64> = latest
        .values()
        .filter(|r| !r.status.is_ok())
        .map(|r| r.row)
        .collect();
    let table_rows: Vec<ElementRef<'_>> = page.select(&sel("#attention tbody tr")).collect();
    let shown: BTreeSet<u64> = table_rows
        .iter()
        .map(|tr| tr.attr("data-row").unwrap().parse().unwrap())
        .collect();
    assert_eq!(shown, needing);
    let cell = |tr: &ElementRef<'_>, s: &str| text_of(tr.select(&sel(s)).next().unwrap());
    for tr in &table_rows {
        let r = &latest[&tr.attr("data-row").unwrap().parse::<u64>().unwrap()];
        assert_eq!(cell(tr, "td.line"), r.line.to_string());
        assert_eq!(cell(tr, ".st"), r.status.as_str());
        assert_eq!(cell(tr, ".device"), r.device);
        assert_eq!(cell(tr, ".user"), r.user);
        assert_eq!(cell(tr, ".token"), r.token.replace("://", "[:]//"));
        assert_eq!(cell(tr, "td.err"), r.error.replace("://", "[:]//"));
        assert!(!r.error.is_empty());
    }
    // The script arrived as text, escaped, and nothing on the page runs or fetches anything.
    assert!(
        table_rows
            .iter()
            .any(|tr| cell(tr, ".token") == "<script>alert(1)</script>")
    );
    let lower = raw.to_ascii_lowercase();
    assert!(
        !lower.contains("<script"),
        "no script element, even escaped wrongly"
    );
    assert!(
        page.select(&sel(
            "script, link, img, iframe, object, embed, base, form, input, audio, video, source"
        ))
        .next()
        .is_none()
    );
    assert!(!lower.contains("url("), "no CSS fetch");
    assert!(!lower.contains("@import"));
    for el in page.root_element().descendent_elements() {
        for (name, value) in el.value().attrs() {
            assert!(!name.starts_with("on"), "no event handler: {name}={value}");
            assert!(
                !value.contains("://"),
                "no URL in an attribute: {name}={value}"
            );
            if name == "href" || name == "src" || name == "xlink:href" {
                assert!(
                    value.starts_with('#'),
                    "only links within the page: {value}"
                );
            }
        }
    }
    // URLs appear only as the tenant, in the facts.
    for node in page.tree.nodes() {
        let Some(t) = node.value().as_text() else {
            continue;
        };
        if t.contains("http://") || t.contains("https://") {
            let in_tenant = node
                .ancestors()
                .filter_map(ElementRef::wrap)
                .any(|e| e.value().id() == Some("tenant"));
            assert!(in_tenant, "a URL outside the tenant's cell: {:?}", &**t);
        }
    }
    let tenant = text_of(page.select(&sel("#tenant")).next().unwrap());
    assert!(tenant.starts_with(&sim.url), "{tenant}");
    let facts = text_of(page.select(&sel("#facts")).next().unwrap());
    assert!(facts.contains(&sha256_hex(&input)), "{facts}");
    assert!(facts.contains(&sha256_hex(&report)), "{facts}");
    // What to do, per status that needs attention.
    let fixes: Vec<String> = page
        .select(&sel("#fixes tbody tr .st"))
        .map(text_of)
        .collect();
    assert_eq!(fixes, ["mismatch", "invalid", "failed"]);
    assert!(raw.contains("HR file"), "the mismatch's fix");
    // A timeline was drawn, with the run marked.
    assert!(page.select(&sel("#timeline rect")).next().is_some());
    assert!(text_of(page.select(&sel("#timeline")).next().unwrap()).contains("#1 run"));

    // The page is written like every output: never over an existing file unless asked.
    let again = bin()
        .arg("report")
        .arg(&report)
        .arg("--html")
        .arg(&page_path)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

// ---------------------------------------------------------------------------------------------
// Hostile, damaged and large reports
// ---------------------------------------------------------------------------------------------

fn row(n: u64, status: Status) -> ReportRow {
    ReportRow {
        row: n,
        line: n + 1,
        token: format!("{:012}", 14_010_000_000u64 + n),
        device: format!("{:09}", 140_000_000 + n),
        user: uuid_like(n),
        email: String::new(),
        status,
        http_status: Some(200),
        attempts: 1,
        lookup_status: None,
        lookups: 0,
        resolved: String::new(),
        error: if status.is_ok() {
            String::new()
        } else {
            "HTTP 500".into()
        },
        note: String::new(),
        finished_at: std::time::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + n * 37),
        elapsed_ms: Some(12),
    }
}

fn write_rows(path: &Path, rows: impl Iterator<Item = ReportRow>) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(COLUMNS).unwrap();
    for r in rows {
        w.write_record(r.to_record()).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn files_that_are_not_reports_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "leavers.csv", &csv_of(&creds(3, 0)));
    for (file, why) in [
        (input.clone(), "is not a report of ds100-offboard"),
        (write(dir.path(), "empty.csv", ""), "it is empty"),
        (
            write(dir.path(), "bin.csv", "\u{0}\u{1}PK\u{3}\u{4}"),
            "is not a report",
        ),
        (dir.path().join("missing.csv"), "cannot open"),
        (dir.path().to_path_buf(), "not a file"),
    ] {
        let out = bin().arg("report").arg(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", file.display());
        assert!(err.contains(why), "{why}: {err}");
        assert!(out.stdout.is_empty());
    }
    // Damage before the last line: the file cannot be vouched for.
    let report = dir.path().join("damaged.csv");
    write_rows(&report, (1..=3).map(|n| row(n, Status::Deleted)));
    let mut text = std::fs::read_to_string(&report).unwrap();
    text = text.replacen(",deleted,", ",deleted-ish,", 1);
    std::fs::write(&report, text).unwrap();
    let out = bin().arg("report").arg(&report).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged at line 2"));
}

#[test]
fn a_report_cut_mid_line_counts_that_row_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.csv");
    write_rows(&report, (1..=5).map(|n| row(n, Status::Deleted)));
    let full = std::fs::read(&report).unwrap();
    std::fs::write(&report, &full[..full.len() - 20]).unwrap();
    let out = bin()
        .arg("report")
        .arg(&report)
        .arg("--json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("last line (line 6) is incomplete"), "{err}");
    let s = json_of(&out.stdout);
    assert_eq!(s["rows"], 5);
    assert_eq!(s["statuses"]["deleted"], 4);
    assert_eq!(s["rows_missing"], 1);
    // The compact report leaves the cut row out rather than inventing it.
    let compact = dir.path().join("c.csv");
    bin()
        .arg("report")
        .arg(&report)
        .arg("--compact")
        .arg(&compact)
        .assert()
        .code(1);
    assert_eq!(read_report(&compact).len(), 4);
}

#[test]
fn hostile_cells_stay_text_in_the_compact_report_and_on_terminals() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.csv");
    let mut bad = row(2, Status::Invalid);
    bad.token = "=cmd|' /C calc'!A0".into();
    bad.error = "\u{1b}]0;owned\u{7}<img src=x onerror=alert(1)>\u{202e}".into();
    write_rows(&report, [row(1, Status::Deleted), bad.clone()].into_iter());
    let compact = dir.path().join("c.csv");
    let page = dir.path().join("p.html");
    let out = bin()
        .arg("report")
        .arg(&report)
        .arg("--compact")
        .arg(&compact)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Byte for byte as the report holds it: still formula-escaped.
    let text = std::fs::read_to_string(&compact).unwrap();
    assert!(text.contains("'=cmd|"), "{text}");
    assert_eq!(read_report(&compact)[1], bad);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<img"), "escaped");
    assert!(!html.contains('\u{1b}') && !html.contains('\u{202e}'));
    assert!(html.contains("\\u{202e}"), "shown, not obeyed");
    let doc = Html::parse_document(&html);
    assert!(doc.select(&sel("img")).next().is_none());
}

/// Peak resident memory of a child, sampled from /proc while it runs (VmHWM is a high-water
/// mark, so the last sample holds the peak up to that moment).
fn run_measuring_peak(cmd: &mut std::process::Command) -> (std::process::ExitStatus, u64) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak_kib);
        }
        assert!(Instant::now() < deadline, "report took too long");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_large_resumed_report_is_read_in_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("big.csv");
    let n: u64 = 150_000;
    // A first command that failed every third row, then a resume that finished them.
    let first = (1..=n).map(|i| {
        if i % 3 == 0 {
            row(i, Status::Failed)
        } else {
            row(i, Status::Deleted)
        }
    });
    let resumed = (1..=n)
        .filter(|i| i % 3 == 0)
        .map(|i| row(i, Status::Deleted));
    write_rows(&report, first.chain(resumed));
    let compact = dir.path().join("compact.csv");
    let page = dir.path().join("page.html");
    let (status, peak_kib) = run_measuring_peak(
        std::process::Command::new(bin_path())
            .arg("report")
            .arg(&report)
            .arg("--compact")
            .arg(&compact)
            .arg("--html")
            .arg(&page),
    );
    assert_eq!(status.code(), Some(0));
    // Per-row state is 9 bytes (1.3 MiB here); rows are never all held.
    assert!(peak_kib > 0 && peak_kib < 48 * 1024, "peak {peak_kib} KiB");
    let mut r = csv::Reader::from_path(&compact).unwrap();
    let mut expect = 1;
    for rec in r.records() {
        let rec = rec.unwrap();
        assert_eq!(rec[0].parse::<u64>().unwrap(), expect);
        assert_eq!(&rec[6], "deleted");
        expect += 1;
    }
    assert_eq!(expect, n + 1);
}

// ---------------------------------------------------------------------------------------------
// Help, completions, man page
// ---------------------------------------------------------------------------------------------

#[test]
fn help_shows_examples_in_the_order_of_a_job() {
    let top = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&top.stdout);
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s} missing from --help: {text}"))
    };
    assert!(at("ds100-offboard validate leavers.csv") < at("--dry-run --key-file"));
    assert!(at("--dry-run --key-file") < at("ds100-offboard report leavers.report.csv"));
    for (cmd, example) in [
        ("validate", "ds100-offboard validate leavers.csv"),
        ("run", "ds100-offboard run leavers.csv --dry-run"),
        ("report", "ds100-offboard report leavers.report.csv --html"),
    ] {
        let out = bin().args([cmd, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{cmd}: {text}");
        assert!(text.contains(example), "{cmd}: {text}");
    }
}

#[test]
fn completions_and_man_page_name_every_command() {
    let out = bin().args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let bash = String::from_utf8_lossy(&out.stdout);
    for word in [
        "validate",
        "run",
        "report",
        "sim",
        "--dry-run",
        "--resume",
        "--html",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("dry-run"),
            "{shell}"
        );
    }
    let out = bin().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH"), "roff");
    for name in ["VALIDATE", "RUN", "REPORT", "SIM", "DEMO", "COMPLETIONS"] {
        assert!(
            man.contains(&format!(".SH \"DS100-OFFBOARD {name}\"")),
            "man page lacks {name}"
        );
    }
    assert!(man.contains("dry\\-run"));
    assert!(man.contains(".SH EXAMPLES"));
    let bad = bin().args(["completions", "cmd.exe"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
