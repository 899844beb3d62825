//! The operator's screen: the progress bar's counts, log times on a terminal and in a pipe,
//! `-q` and the plan it asks about, the clear messages for inputs and URLs the tool cannot use,
//! the throttle log line and the final rate, the report's values as the input spells them, and
//! `sim`'s first line for scripts. Whatever needs a terminal runs on a real pseudo-terminal and
//! is read back as the screen the operator would see.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use crate::harness::*;
use ds100_offboard::report::status::Status;

const WIDTH: u16 = 160;

/// What the run drew on a terminal, replayed.
fn screen(text: &str) -> Screen {
    let mut screen = Screen::new(usize::from(WIDTH));
    screen.feed(text);
    screen
}

/// The progress bar's first line on `screen` ("[…] 5/12 rows · …"), if it is drawn whole.
fn bar_line(screen: &Screen) -> Option<String> {
    screen
        .text()
        .lines()
        .rev()
        .find(|l| l.contains(" rows · ") && (l.contains("ETA") || l.contains("stopped")))
        .map(str::to_string)
}

/// `n` rows that are invalid (a device serial with a character no serial has).
fn invalid_rows(n: usize) -> String {
    (0..n).map(|i| format!(",bad-{i},\n")).collect()
}

// ---- the progress bar ---------------------------------------------------------------------

/// A safety stop leaves rows never attempted: they are counted apart, as skipped, and do not
/// fill the bar. Before, the bar ended full ("12/12 rows") as if every row had been done.
#[test]
fn skipped_rows_do_not_fill_the_progress_bar() {
    let all = creds(10, 62_000);
    let mut input = csv_of(&all);
    input.push_str(&invalid_rows(2));
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["400,every=1,on=delete"])
        .input(&input);
    let Pty {
        controller,
        terminal,
    } = Pty::open(WIDTH, 40);
    let child = sc
        .run_cmd()
        .args(["--yes", "--concurrency", "1", "--rate", "1000/s"])
        .args(["--stop-after", "3"])
        .env("TERM", "xterm-256color")
        .stdio(None, None, Some(terminal.into()))
        .spawn();
    let seen = Collector::start(controller);
    let ran = child.wait().exits(3);
    let counts = ran.counts();
    let n = |s: &str| counts.get(s).copied().unwrap_or(0);
    assert!(n("skipped") >= 5, "{counts:?}");
    let screen = screen(&seen.finish());
    let bar = bar_line(&screen).unwrap_or_else(|| panic!("no bar:\n{}", screen.text()));
    // Done: the invalid rows and the failed ones; the skipped ones are shown apart.
    let done = n("invalid") + n("failed");
    assert!(bar.contains(&format!(" {done}/12 rows ")), "{bar}");
    assert!(
        bar.contains(&format!(
            "stopped: {} rows not attempted (skipped)",
            n("skipped")
        )),
        "{bar}"
    );
    assert!(!screen.text().contains("12/12 rows"), "{}", screen.text());
}

/// Invalid rows end the moment they are read; rows/s counts only rows that were sent. While
/// the first sent row is still waiting for the tenant (held open by the simulator's latency)
/// the bar has 30 invalid rows done and no sending rate to show. Before, it showed the 30
/// instant rows as a rate of hundreds a second, and an ETA from it.
#[test]
fn rows_per_second_counts_only_rows_that_were_sent() {
    let all = creds(2, 62_100);
    let mut input = String::from("tokenSerialNumber,deviceSerialNumber,userId\n");
    input.push_str(&invalid_rows(30));
    input.push_str(csv_of(&all).split_once('\n').unwrap().1);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "1200ms"])
        .input(&input);
    let Pty {
        controller,
        terminal,
    } = Pty::open(WIDTH, 40);
    let child = sc
        .run_cmd()
        .args(["--yes", "--concurrency", "1", "--rate", "1000/s"])
        .env("TERM", "xterm-256color")
        .stdio(None, None, Some(terminal.into()))
        .spawn();
    let seen = Collector::start(controller);
    let mut waiting = String::new();
    wait_until("the invalid rows on the bar", || {
        waiting = bar_line(&screen(&seen.text())).unwrap_or_default();
        waiting.contains(" 30/32 rows ") || waiting.contains(" 31/32 rows ")
    });
    assert!(
        waiting.contains(" 30/32 rows "),
        "the bar skipped the wait for the first sent row: {waiting}"
    );
    assert!(
        waiting.contains("– rows/s sent · ETA –"),
        "no rate before a sent row finished: {waiting}"
    );
    // The invalid rows need attention: exit 1.
    child.wait().exits(1);
    let end = screen(&seen.finish());
    let bar = bar_line(&end).unwrap_or_else(|| panic!("no bar:\n{}", end.text()));
    assert!(bar.contains(" 32/32 rows "), "{bar}");
    // Two rows in about 2.4 s: a rate well under one a second, not 30 rows' worth.
    let rate: f64 = bar
        .split(" rows · ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("a rate at the end: {bar}"));
    assert!(rate > 0.0 && rate < 2.0, "{bar}");
    assert!(bar.contains("ETA 0s"), "{bar}");
}

// ---- log lines ----------------------------------------------------------------------------

/// A token file anyone can read: the run warns about it, one log line at the default level.
fn warned_run(sc: &Scenario) -> Cmd<'_> {
    let token = sc.file("token.txt", TOKEN);
    set_mode(&token, 0o644);
    sc.run_cmd()
        .no_token()
        .arg("--token-file")
        .arg(token)
        .args(["--yes", "--overwrite", "--rate", "1000/s"])
}

/// The minute of the day in `hh:mm`.
fn minute_of_day(hh_mm: &str) -> i64 {
    let (h, m) = hh_mm.split_once(':').unwrap();
    h.parse::<i64>().unwrap() * 60 + m.parse::<i64>().unwrap()
}

/// Is `s` `HH:MM:SS`?
fn is_time_of_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
}

/// Is `s` an RFC 3339 UTC time (`2025-06-01T21:04:11.123456Z`)?
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s.ends_with('Z')
}

/// On a terminal a log line starts with the local time of day; in a pipe, and as JSON even on
/// a terminal, with the full RFC 3339 UTC time. The zone is +05:30 (`TZ`), so a UTC time of
/// day cannot pass for the local one; the report's `finishedAt` (UTC, seconds later) says what
/// the local time was.
#[test]
fn log_lines_carry_the_local_time_on_a_terminal_and_rfc_3339_elsewhere() {
    let all = creds(1, 62_200);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));

    // A terminal.
    let Pty {
        controller,
        terminal,
    } = Pty::open(WIDTH, 40);
    let child = warned_run(&sc)
        .arg("--dry-run")
        .env("TZ", "IST-05:30")
        .stdio(None, None, Some(terminal.into()))
        .spawn();
    let seen = Collector::start(controller);
    let ran = child.wait().exits(0);
    let shown = screen(&seen.finish()).text();
    let line = shown
        .lines()
        .find(|l| l.contains("WARN") && l.contains("chmod 600"))
        .unwrap_or_else(|| panic!("no warning on screen:\n{shown}"));
    let time = line.split_whitespace().next().unwrap();
    assert!(is_time_of_day(time), "{line}");
    let finished = ran.report()[0].finished_at;
    let since_epoch = finished.duration_since(std::time::UNIX_EPOCH).unwrap();
    let utc = (since_epoch.as_secs() % 86_400 / 60) as i64;
    let diff = (minute_of_day(&time[..5]) - (utc + 330)).rem_euclid(24 * 60);
    assert!(
        diff <= 2 || diff >= 24 * 60 - 2,
        "{time} is not the local time at +05:30 of the report's UTC minute {utc}"
    );

    // A pipe.
    let ran = warned_run(&sc)
        .arg("--dry-run")
        .env("TZ", "IST-05:30")
        .run();
    let ran = ran.exits(0);
    let line = ran
        .stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("chmod 600"))
        .unwrap_or_else(|| panic!("no warning:\n{}", ran.stderr));
    let time = line.split_whitespace().next().unwrap();
    assert!(is_rfc3339_utc(time), "{line}");

    // JSON on a terminal.
    let Pty {
        controller,
        terminal,
    } = Pty::open(WIDTH, 40);
    let child = warned_run(&sc)
        .args(["--dry-run", "--log-format", "json"])
        .env("TZ", "IST-05:30")
        .stdio(None, None, Some(terminal.into()))
        .spawn();
    let seen = Collector::start(controller);
    child.wait().exits(0);
    let text = seen.finish();
    let json_line = text
        .lines()
        .find(|l| l.contains("chmod 600"))
        .unwrap_or_else(|| panic!("no warning:\n{text}"));
    let start = json_line.find('{').unwrap();
    let event: serde_json::Value = serde_json::from_str(json_line[start..].trim_end())
        .unwrap_or_else(|e| panic!("{e}: {json_line}"));
    let timestamp = event["timestamp"].as_str().unwrap_or_default();
    assert!(is_rfc3339_utc(timestamp), "{json_line}");
}

/// The throttle log line names the one rate the run now sends at, labelled, and `--rate` it
/// climbs back to; before, it also named the rate the tenant admitted and the rate before, so
/// one line could say 40/s, 57/s and 400/s at once.
#[test]
fn the_throttle_log_line_states_one_rate() {
    let all = creds(150, 62_300);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--rate-limit", "100/s", "--rate-limit-burst", "5"])
        .input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .args(["--yes", "--rate", "1000/s", "--max-backoff", "200ms"])
        .args(["--stop-after", "0", "--max-attempts", "20"])
        .run()
        .exits(0);
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("throttles (429)"))
        .collect();
    assert!(!lines.is_empty(), "no throttle line:\n{}", ran.stderr);
    for line in lines {
        let (said, climb) = line.split_once("--rate ").unwrap_or((line, ""));
        let rates: Vec<&str> = said
            .split_whitespace()
            .filter(|w| {
                let w = w.trim_end_matches([',', ';', ':']);
                w.ends_with("/s") || w.ends_with("/min") || w.ends_with("/h")
            })
            .collect();
        assert_eq!(rates.len(), 1, "one rate: {line}");
        assert!(said.contains("sending at "), "{line}");
        assert!(climb.is_empty() || climb.starts_with("1000/s "), "{line}");
    }
    assert!(sc.sim().store().is_empty());
}

/// The summary labels the rate a run ended at against `--rate`, so that it is not read as the
/// rate achieved; `report` shows the same from the sidecar, and a sidecar whose rates are not
/// positive numbers (edited, damaged) is shown, not a panic.
#[test]
fn the_final_rate_is_labelled_and_a_damaged_one_is_no_panic() {
    let all = creds(3, 62_350);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let ran = sc.run(&["--yes", "--rate", "1000/s"]).exits(0);
    assert!(
        ran.stdout.contains("final rate       1000/s (--rate)"),
        "{}",
        ran.stdout
    );
    let report = ran.report_path().to_path_buf();
    let sidecar = sc.path("in.report.meta.json");
    let mut meta = read_json(&sidecar);
    meta["invocations"][0]["rate_per_second"] = serde_json::json!(-1.0);
    meta["invocations"][0]["final_rate_per_second"] = serde_json::json!(0.0);
    std::fs::write(&sidecar, meta.to_string()).unwrap();
    let shown = ds100("report").arg(&report).run().exits(0);
    assert!(shown.stdout.contains("final rate 0/s"), "{}", shown.stdout);
    ds100("report")
        .arg(&report)
        .arg("--html")
        .arg(sc.path("audit.html"))
        .run()
        .exits(0);
}

// ---- -q and the plan ----------------------------------------------------------------------

/// `-q` on a terminal still shows the plan when it asks for the typed count: no one should
/// confirm what they cannot see. With `-q --yes` nothing is asked and nothing is shown.
#[test]
fn quiet_still_shows_the_plan_it_asks_to_confirm() {
    let all = creds(6, 62_400);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all[..3]));
    let rest = sc.file("rest.csv", &csv_of(&all[3..]));

    let Pty {
        mut controller,
        terminal,
    } = Pty::open(WIDTH, 40);
    let child = sc
        .run_cmd()
        .args(["-q", "--rate", "1000/s"])
        .stdio(
            Some(terminal.try_clone().unwrap().into()),
            None,
            Some(terminal.into()),
        )
        .spawn();
    let seen = Collector::start(controller.try_clone().unwrap());
    wait_until("the confirmation prompt", || {
        seen.text().contains("Type 3 to go on")
    });
    let asked = screen(&seen.text()).condensed();
    for part in ["Plan (delete)", "to delete 3", "tenant", "credentials"] {
        assert!(
            asked.contains(&condense(part)),
            "{part:?} is not on screen:\n{}",
            screen(&seen.text()).text()
        );
    }
    controller.write_all(b"3\n").unwrap();
    let ran = child.wait().exits(0);
    assert_eq!(ran.stdout, "", "-q prints no summary");
    assert_eq!(sorted(sc.sim().store()), sorted(all[3..].to_vec()));
    drop(controller);
    drop(seen);

    let Pty {
        controller,
        terminal,
    } = Pty::open(WIDTH, 40);
    let child = sc
        .run_cmd()
        .input(&rest)
        .args(["-q", "--yes", "--rate", "1000/s"])
        .stdio(
            Some(terminal.try_clone().unwrap().into()),
            None,
            Some(terminal.into()),
        )
        .spawn();
    let seen = Collector::start(controller);
    child.wait().exits(0);
    let shown = screen(&seen.finish()).text();
    assert!(!shown.contains("Plan"), "-q --yes shows no plan:\n{shown}");
    assert!(sc.sim().store().is_empty());
}

// ---- clear messages -----------------------------------------------------------------------

/// An input that cannot be read twice — `-`, `/dev/stdin` on a pipe, a named pipe, a
/// directory — is refused with the reason, exit 2, before any request or report. A named pipe
/// no one writes to used to hang the run; `/dev/stdin` failed with "Illegal seek", and `-`
/// with "No such file".
#[test]
fn an_input_that_is_not_a_regular_file_is_refused_with_the_reason() {
    let all = creds(2, 62_500);
    let text = csv_of(&all);
    let sc = Scenario::new().seed(&all).input(&text);
    let fifo = sc.path("rows.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path we own and a mode.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let dir = sc.path("a-directory");
    std::fs::create_dir(&dir).unwrap();

    let why = "the input must be a regular file: it is read once to plan and once to send";
    for (input, what) in [
        ("-", "'-' (standard input)"),
        ("/dev/stdin", "is a pipe"),
        (fifo.to_str().unwrap(), "is a pipe"),
        (dir.to_str().unwrap(), "is a directory"),
    ] {
        for command in ["run", "validate"] {
            let cmd = if command == "run" {
                sc.run_cmd().args(FAST)
            } else {
                sc.validate_cmd()
            };
            let ran = cmd
                .input(std::path::Path::new(input))
                .current_dir(sc.dir())
                .stdin(&text)
                .run()
                .exits(2);
            assert!(
                ran.stderr.contains(why),
                "{command} {input}: {}",
                ran.stderr
            );
            assert!(
                ran.stderr.contains(what),
                "{command} {input}: {}",
                ran.stderr
            );
        }
    }
    assert_eq!(sc.sim().stat("requests"), 0, "nothing was sent");
    let written: Vec<_> = std::fs::read_dir(sc.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("report") || n.contains("validation") || n.contains("lock"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
    for unit in units {
        if big_endian {
            out.extend(unit.to_be_bytes());
        } else {
            out.extend(unit.to_le_bytes());
        }
    }
    out
}

/// A UTF-16 file (Excel's "Unicode Text", TAB-separated; both byte orders, with and without a
/// byte-order mark) is refused with how to save it, exit 2, nothing sent. Without a BOM it used
/// to read as a header without `deviceSerialNumber`.
#[test]
fn a_utf16_input_says_to_save_it_as_csv_utf8() {
    let all = creds(2, 62_600);
    let sc = Scenario::new().seed(&all);
    let text = csv_of(&all).replace(',', "\t").replace('\n', "\r\n");
    for big_endian in [false, true] {
        for bom in [true, false] {
            let name = format!("unicode-{big_endian}-{bom}.txt");
            let path = sc.path(&name);
            std::fs::write(&path, utf16(&text, big_endian, bom)).unwrap();
            for command in ["run", "validate"] {
                let cmd = if command == "run" {
                    sc.run_cmd().args(FAST)
                } else {
                    sc.validate_cmd()
                };
                let ran = cmd.input(&path).run().exits(2);
                for part in ["is UTF-16", "CSV UTF-8", "not \"Unicode Text\""] {
                    assert!(
                        ran.stderr.contains(part),
                        "{command} {name}: {part:?} in {}",
                        ran.stderr
                    );
                }
            }
        }
    }
    assert_eq!(sc.sim().stat("requests"), 0, "nothing was sent");
    assert_eq!(sc.sim().store().len(), 2);
}

/// A base URL without `https://` says which URL to type: `http://` for a loopback address
/// (the simulator), `https://` for a tenant. Before, `127.0.0.1:8080` was "not a URL" and
/// `localhost:8080` an "unsupported URL scheme 'localhost'".
#[test]
fn a_base_url_without_scheme_says_what_to_type() {
    let all = creds(1, 62_700);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let sim_hostport = sc.sim().url.trim_start_matches("http://").to_string();
    for (given, want) in [
        (
            sim_hostport.as_str(),
            format!("write http://{sim_hostport}"),
        ),
        ("localhost:8080", "write http://localhost:8080".to_string()),
        (
            "acme.access.securid.com",
            "write https://acme.access.securid.com;".to_string(),
        ),
    ] {
        for dry_run in [false, true] {
            let mut cmd = sc.run_cmd().base_url(given).args(FAST);
            if dry_run {
                cmd = cmd.arg("--dry-run");
            }
            let ran = cmd.run().exits(2);
            assert!(ran.stderr.contains("has no scheme"), "{}", ran.stderr);
            assert!(ran.stderr.contains(&want), "{want}: {}", ran.stderr);
            assert!(ran.stderr.contains("nothing was sent"), "{}", ran.stderr);
        }
    }
    assert_eq!(sc.sim().stat("requests"), 0, "nothing was sent");
}

// ---- the report's columns ------------------------------------------------------------------

/// A dry run reports the values as the input spells them, exactly as a real run does (an
/// upper-case userId stays upper-case; only fields the input left empty show the lookup's
/// values, named in `resolved`); and `validate`'s valid rows have an empty `error`, their
/// notes in `note`.
#[test]
fn a_dry_run_keeps_the_input_spelling_and_valid_rows_have_no_error() {
    let all = creds(3, 62_900);
    let input = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n{},{},{}\n,{},\n {} , {} ,{}\n",
        all[0].token,
        all[0].device,
        all[0].user.to_uppercase(),
        all[1].device,
        all[2].token,
        all[2].device,
        all[2].user
    );
    let sc = Scenario::new().seed(&all).input(&input);
    let v = sc.validate(&[]).exits(0).rows(3);
    for r in v.values() {
        assert_eq!(r.status, Status::Valid, "{r:?}");
        assert!(r.error.is_empty(), "a valid row has no error: {r:?}");
    }
    assert!(v[&2].note.contains("lookup"), "{:?}", v[&2]);

    let dry = sc.run(&["--dry-run", "--rate", "1000/s"]).exits(0).rows(3);
    let real = sc.run(&["--yes", "--rate", "1000/s"]).exits(0).rows(3);
    for row in 1..=3 {
        let (d, r) = (&dry[&row], &real[&row]);
        assert_eq!(
            (&d.token, &d.device, &d.user, &d.resolved),
            (&r.token, &r.device, &r.user, &r.resolved),
            "row {row}"
        );
        assert!(d.error.is_empty() && r.error.is_empty(), "{d:?} {r:?}");
    }
    assert_eq!(
        dry[&1].user,
        all[0].user.to_uppercase(),
        "as the input spells it"
    );
    assert_eq!(dry[&2].resolved, "tokenSerialNumber;userId");
    assert_eq!(dry[&3].token, all[2].token, "trimmed");
    assert!(sc.sim().store().is_empty());
}

// ---- sim's first line ---------------------------------------------------------------------

fn get_stats(url: &str) -> String {
    let hostport = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport).expect("the simulator still serves");
    write!(
        s,
        "GET /__sim/stats HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// `sim | head -1` gives the URL alone, and the simulator serves on after `head` has closed
/// the pipe; what it writes afterwards (its stats at SIGTERM) is lost, not a failure.
#[test]
fn sim_prints_its_url_alone_first_and_serves_on_after_head_closes_the_pipe() {
    let mut sim = Command::new(bin_path())
        .args(["sim", "--listen", "127.0.0.1:0", "--generate", "3"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let head = Command::new("head")
        .arg("-1")
        .stdin(Stdio::from(sim.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(head.status.success());
    let url = String::from_utf8(head.stdout).unwrap();
    let url = url.strip_suffix('\n').unwrap_or(&url);
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.contains(' '),
        "the first line is the URL alone: {url:?}"
    );
    // `head` is gone and the pipe with it.
    let answer = get_stats(url);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"store_size\":3"), "{answer}");
    send_signal(&sim, libc::SIGTERM);
    let status = sim.wait().unwrap();
    let mut stderr = String::new();
    sim.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The banner follows the URL on stdout, and the stats come last (harness's simulator).
#[test]
fn sim_prints_its_banner_after_the_url() {
    let all = creds(2, 62_800);
    let mut sc = Scenario::new().seed(&all);
    let url = sc.sim().url.clone();
    let rest = sc.stop_sim();
    let mut lines = rest.lines();
    let banner = lines.next().unwrap_or_default();
    assert!(banner.contains("2 credentials"), "{rest}");
    assert!(banner.contains(&format!("{url}/__sim/store")), "{rest}");
    assert!(
        lines.any(|l| l.starts_with('{') && l.contains("\"store_size\":2")),
        "{rest}"
    );
}

/// A simulator whose stdout is closed before it writes its first line (the reader already
/// gone) serves all the same, and exits 0 at SIGTERM. Before, the failed write of the URL
/// ended it at once.
#[test]
fn sim_serves_on_when_nobody_reads_its_stdout() {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just opened and are owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read_end);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut sim = Command::new(bin_path())
        .args([
            "sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--generate",
            "2",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(sim.stderr.take().unwrap());
    wait_until("the simulator serving", || {
        if let Some(status) = sim.try_wait().unwrap() {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            panic!("the simulator ended ({status}): {text}");
        }
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(get_stats(&url).contains("\"store_size\":2"));
    send_signal(&sim, libc::SIGTERM);
    let status = sim.wait().unwrap();
    let mut text = String::new();
    stderr.read_line(&mut text).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{status}: {text}");
}
