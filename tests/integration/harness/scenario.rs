//! The one scenario builder: credentials in, simulator flags, an input file, then runs of the
//! real binary against that simulator; out come the exit code, stdout/stderr, the report rows
//! by row number, the summary JSON, and the simulator itself (store, stats).
//!
//! ```text
//! let sc = Scenario::new().seed(&all).faults(&["500,every=3"]).input(&csv_of(&all));
//! let ran = sc.run(FAST).exits(0);
//! let rows = ran.rows(30);            // one report row per input row, keyed by row number
//! assert!(sc.sim().store().is_empty());
//! ```

use std::cell::{Cell, OnceCell};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use ds100_offboard::report::row::ReportRow;

use super::process::{Running, run_measuring_peak_rss};
use super::sim::{Sim, SimSpec};
use super::{Cred, TOKEN, bin_path, csv_of, read_json, read_report, report_by_row, status_counts};

/// A temp dir, a simulator (started on first use) and an input file.
pub struct Scenario {
    dir: tempfile::TempDir,
    spec: SimSpec,
    input: Option<PathBuf>,
    sim: OnceCell<Sim>,
    n_summaries: Cell<u32>,
}

impl Scenario {
    /// An empty simulator that accepts `TOKEN`; no input yet.
    pub fn new() -> Scenario {
        Scenario {
            dir: tempfile::tempdir().unwrap(),
            spec: SimSpec {
                auth: vec!["--token".into(), TOKEN.into()],
                args: Vec::new(),
                env: Vec::new(),
                trace_log: None,
            },
            input: None,
            sim: OnceCell::new(),
            n_summaries: Cell::new(0),
        }
    }

    // ---- the simulator ----

    /// The simulator's store: these credentials.
    pub fn seed(self, creds: &[Cred]) -> Scenario {
        let seed = self.file("seed.csv", &csv_of(creds));
        self.sim_args(&["--seed", seed.to_str().unwrap()])
    }

    /// More simulator flags (`--latency 20ms`, `--rate-limit 40/s`, …).
    pub fn sim_args(mut self, args: &[&str]) -> Scenario {
        self.spec.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// One `--fault F` per entry, in order (the first that fires wins).
    pub fn faults(mut self, faults: &[&str]) -> Scenario {
        for f in faults {
            self.spec
                .args
                .extend(["--fault".to_string(), f.to_string()]);
        }
        self
    }

    /// The simulator's auth flags instead of `--token TOKEN`; none accepts any bearer token.
    pub fn sim_auth(mut self, auth: &[&str]) -> Scenario {
        self.spec.auth = auth.iter().map(|a| a.to_string()).collect();
        self
    }

    /// The simulator accepts only JWTs signed by this key file.
    pub fn sim_key(self, key: &Path) -> Scenario {
        self.sim_auth(&["--key-file", key.to_str().unwrap()])
    }

    pub fn sim_env(mut self, key: &str, value: &str) -> Scenario {
        self.spec.env.push((key.into(), value.into()));
        self
    }

    /// The simulator logs at trace level into `sim.log` in the scenario's directory.
    pub fn sim_trace(mut self) -> Scenario {
        self.spec.trace_log = Some(self.path("sim.log"));
        self
    }

    /// The simulator, started on first use.
    pub fn sim(&self) -> &Sim {
        self.sim.get_or_init(|| Sim::start(&self.spec))
    }

    /// Another simulator like this one (same seed, auth and flags) plus `extra` flags.
    pub fn another_sim(&self, extra: &[&str]) -> Sim {
        let mut spec = self.spec.clone();
        spec.args.extend(extra.iter().map(|a| a.to_string()));
        Sim::start(&spec)
    }

    /// Stops the simulator with SIGTERM; what it printed after its first line.
    pub fn stop_sim(&mut self) -> String {
        self.sim.take().expect("the simulator was started").stop()
    }

    // ---- files ----

    /// The input file `in.csv`.
    pub fn input(self, text: &str) -> Scenario {
        self.input_named("in.csv", text)
    }

    pub fn input_named(mut self, name: &str, text: &str) -> Scenario {
        self.input = Some(self.file(name, text));
        self
    }

    /// An input file that exists already (a fixture).
    pub fn input_file(mut self, path: &Path) -> Scenario {
        self.input = Some(path.to_path_buf());
        self
    }

    pub fn input_path(&self) -> &Path {
        self.input.as_deref().expect("the scenario has an input")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `NAME` in the scenario's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `NAME` in the scenario's directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        super::write(self.dir.path(), name, text)
    }

    /// A summary file name not used before in this scenario.
    fn fresh_summary(&self) -> PathBuf {
        let n = self.n_summaries.get() + 1;
        self.n_summaries.set(n);
        self.path(&format!("summary-{n}.json"))
    }

    // ---- runs ----

    /// `run INPUT --base-url SIM ARGS` with `DS100_TOKEN=TOKEN`.
    pub fn run(&self, args: &[&str]) -> Ran {
        self.run_cmd().args(args).run()
    }

    /// The same, to add to before running or spawning.
    pub fn run_cmd(&self) -> Cmd<'_> {
        let mut cmd = Cmd::new("run");
        cmd.scenario = Some(self);
        cmd.input = self.input.clone();
        cmd.target = Target::Sim;
        cmd.token = Some(TOKEN.to_string());
        cmd
    }

    /// `SUBCOMMAND INPUT --base-url SIM` with `DS100_TOKEN=TOKEN`, for the sending commands
    /// other than `run` (`disable`, `enable`); add arguments, then run or spawn.
    pub fn cmd(&self, subcommand: &str) -> Cmd<'_> {
        let mut cmd = self.run_cmd();
        cmd.subcommand = subcommand.to_string();
        cmd
    }

    /// `validate INPUT ARGS` (offline).
    pub fn validate(&self, args: &[&str]) -> Ran {
        self.validate_cmd().args(args).run()
    }

    pub fn validate_cmd(&self) -> Cmd<'_> {
        let mut cmd = Cmd::new("validate");
        cmd.scenario = Some(self);
        cmd.input = self.input.clone();
        cmd
    }
}

/// Where a `run` sends its requests.
enum Target {
    /// The scenario's simulator (started when the command runs).
    Sim,
    Url(String),
    /// No `--base-url` flag.
    None,
}

/// `ds100-offboard SUBCOMMAND …` with a clean environment for credentials.
pub fn ds100(subcommand: &str) -> Cmd<'static> {
    Cmd::new(subcommand)
}

/// One invocation of the binary, built up, then `run` (to its end) or `spawn`ed.
pub struct Cmd<'a> {
    scenario: Option<&'a Scenario>,
    subcommand: String,
    input: Option<PathBuf>,
    target: Target,
    token: Option<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    stdio: [Option<Stdio>; 3],
    current_dir: Option<PathBuf>,
}

impl<'a> Cmd<'a> {
    fn new(subcommand: &str) -> Cmd<'a> {
        Cmd {
            scenario: None,
            subcommand: subcommand.to_string(),
            input: None,
            target: Target::None,
            token: None,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            stdio: [None, None, None],
            current_dir: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Another input file than the scenario's.
    pub fn input(mut self, path: &Path) -> Self {
        self.input = Some(path.to_path_buf());
        self
    }

    /// `--base-url URL` instead of the scenario's simulator.
    pub fn base_url(mut self, url: &str) -> Self {
        self.target = Target::Url(url.to_string());
        self
    }

    /// No `--base-url` flag (the tenant comes from the key file or `DS100_BASE_URL`).
    pub fn no_base_url(mut self) -> Self {
        self.target = Target::None;
        self
    }

    /// `DS100_TOKEN=TOKEN` instead of the harness's.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// No `DS100_TOKEN`.
    pub fn no_token(mut self) -> Self {
        self.token = None;
        self
    }

    /// `--key-file KEY` and no `DS100_TOKEN`.
    pub fn key_file(self, key: &Path) -> Self {
        self.no_token().arg("--key-file").arg(key)
    }

    /// `--summary-json` to a new file in the scenario's directory, read by `Ran::summary`.
    pub fn summary(self) -> Self {
        let path = self
            .scenario
            .expect("a summary file needs a scenario")
            .fresh_summary();
        self.arg("--summary-json").arg(path)
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        ));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    /// Text on stdin (otherwise stdin is empty).
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.as_bytes().to_vec());
        self
    }

    /// For `spawn`: stdin, stdout and stderr instead of null, a pipe and a pipe.
    pub fn stdio(
        mut self,
        stdin: Option<Stdio>,
        stdout: Option<Stdio>,
        stderr: Option<Stdio>,
    ) -> Self {
        self.stdio = [stdin, stdout, stderr];
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.current_dir = Some(dir.to_path_buf());
        self
    }

    /// The value after `flag` among the arguments.
    fn flag_value(&self, flag: &str) -> Option<&OsStr> {
        let i = self.args.iter().position(|a| a == flag)?;
        self.args.get(i + 1).map(OsString::as_os_str)
    }

    /// Where the report goes: `--report`, else next to the input as the tool names it.
    fn report_path(&self) -> Option<PathBuf> {
        if let Some(p) = self.flag_value("--report") {
            return Some(self.resolve(Path::new(p)));
        }
        let input = self.input.as_ref()?;
        let dry_run = self.args.iter().any(|a| a == "--dry-run");
        let suffix = match self.subcommand.as_str() {
            "validate" => "validation",
            "run" if dry_run => "dry-run",
            "run" => "report",
            "disable" if dry_run => "disable-dry-run",
            "disable" => "disable-report",
            "enable" if dry_run => "enable-dry-run",
            "enable" => "enable-report",
            _ => return None,
        };
        let stem = input.file_stem()?.to_string_lossy();
        Some(self.resolve(&input.with_file_name(format!("{stem}.{suffix}.csv"))))
    }

    fn summary_path(&self) -> Option<PathBuf> {
        let p = self.flag_value("--summary-json")?;
        (p != "-").then(|| self.resolve(Path::new(p)))
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        match &self.current_dir {
            Some(dir) => dir.join(path),
            None => path.to_path_buf(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(bin_path());
        cmd.env_remove("DS100_TOKEN")
            .env_remove("DS100_BASE_URL")
            .env_remove("DS100_KEY_FILE")
            .env_remove("DS100_OAUTH_ISSUER")
            .env_remove("DS100_OAUTH_CLIENT_ID")
            .env_remove("DS100_OAUTH_KEY")
            .env_remove("RUST_LOG")
            .arg(&self.subcommand);
        if let Some(input) = &self.input {
            cmd.arg(input);
        }
        match &self.target {
            Target::Sim => {
                let sim = self.scenario.expect("a scenario").sim();
                cmd.args(["--base-url", &sim.url]);
            }
            Target::Url(url) => {
                cmd.args(["--base-url", url]);
            }
            Target::None => {}
        }
        if let Some(token) = &self.token {
            cmd.env("DS100_TOKEN", token);
        }
        cmd.args(&self.args);
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs to the end (two minutes at most).
    pub fn run(mut self) -> Ran {
        let (report, summary) = (self.report_path(), self.summary_path());
        let mut cmd = assert_cmd::Command::from_std(self.command());
        cmd.timeout(Duration::from_secs(120));
        if let Some(input) = self.stdin.take() {
            cmd.write_stdin(input);
        }
        let out = cmd.output().expect("the binary runs (within two minutes)");
        Ran::new(
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            report,
            summary,
        )
    }

    /// Runs to the end and measures the run's own peak RSS (KiB).
    pub fn run_measuring_peak_rss(self) -> (Ran, i64) {
        let (report, summary) = (self.report_path(), self.summary_path());
        let (status, stderr, peak) = run_measuring_peak_rss(&self.command());
        let ran = Ran::new(status, String::new(), stderr, report, summary);
        (ran, peak)
    }

    /// Starts it as a child process, to signal, kill or read while it runs.
    pub fn spawn(mut self) -> Running {
        assert!(self.stdin.is_none(), "a spawned run reads no stdin text");
        let report = self.report_path();
        let mut cmd = self.command();
        let [stdin, stdout, stderr] = std::mem::take(&mut self.stdio);
        cmd.stdin(stdin.unwrap_or_else(Stdio::null))
            .stdout(stdout.unwrap_or_else(Stdio::piped))
            .stderr(stderr.unwrap_or_else(Stdio::piped));
        let child = cmd.spawn().expect("spawn the run");
        // Our copies of a terminal's side close here, so its controller sees the end.
        drop(cmd);
        Running::new(child, report)
    }
}

/// How an invocation ended and what it wrote. Built only for runs that exited by themselves
/// (not killed by a signal) and did not panic.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    report: Option<PathBuf>,
    summary: Option<PathBuf>,
}

impl Ran {
    pub(crate) fn new(
        status: ExitStatus,
        stdout: String,
        stderr: String,
        report: Option<PathBuf>,
        summary: Option<PathBuf>,
    ) -> Ran {
        assert!(
            !stderr.contains("panicked") && !stdout.contains("panicked"),
            "a panic: {stderr}"
        );
        let code = status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal ({status}): {stderr}"));
        Ran {
            code,
            stdout,
            stderr,
            report,
            summary,
        }
    }

    /// Asserts the exit code, showing both outputs if it differs.
    pub fn exits(self, code: i32) -> Ran {
        assert_eq!(
            self.code, code,
            "exit code\n--- stderr:\n{}\n--- stdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }

    pub fn report_path(&self) -> &Path {
        self.report
            .as_deref()
            .expect("this command writes no report")
    }

    pub fn has_report(&self) -> bool {
        self.report_path().exists()
    }

    /// The report's rows, exactly one per input row 1..=n, by row number.
    pub fn rows(&self, n: u64) -> HashMap<u64, ReportRow> {
        report_by_row(self.report_path(), n)
    }

    /// The report's rows in file order.
    pub fn report(&self) -> Vec<ReportRow> {
        read_report(self.report_path())
    }

    /// Rows per status name.
    pub fn counts(&self) -> HashMap<String, usize> {
        status_counts(self.report_path())
    }

    pub fn summary_path(&self) -> &Path {
        self.summary.as_deref().expect("run with --summary-json")
    }

    /// The `--summary-json` file.
    pub fn summary(&self) -> serde_json::Value {
        read_json(self.summary_path())
    }
}
