//! The integration tests, one binary: the real `ds100-offboard` against a real simulator
//! process on 127.0.0.1, one module per area, every setup built with `harness::Scenario`.

mod harness;

/// `report`: whole-job summaries, `--compact`, the summary JSON, the audit page; help.
mod audit;
/// Key files, JWTs, renewal, which credentials win, HTTPS, `--ca-cert` and proxies.
mod auth;
/// The commands as a user types them: validate, demo, usage errors.
mod cli;
/// `disable` / `enable`, and a report as input with `--only-status`.
mod disable;
/// Injected faults of every kind, mixed and one by one.
mod faults;
/// The hostile-input corpus and generated 10 MB inputs.
mod hostile_input;
/// Lookups: resolving, explaining 404s, dry run, `--verify`.
mod lookups;
/// OAuth API clients: token endpoint, keys, renewal, scopes, refusals.
mod oauth;
/// The operator's screen: progress bar, log times, `-q` and the plan, clear messages, rate
/// lines, the input's spelling in reports, `sim`'s first line.
mod operator;
/// Files the tool writes never land on files it reads; odd reports; echoed tokens.
mod outputs;
/// People by email: users resolved by address, confirmed by device, once per address.
mod people;
/// Reports as input: emails kept, other tenants and edited reports refused, undo scoped.
mod reports_as_input;
/// Crash safety: kill -9 and `--resume`, Ctrl-C, refused resumes.
mod resume;
/// `run` end to end: retries, throttling, safety stop, pacing.
mod run;
/// No secret in any output.
mod secrets;
/// Answers that are not the API's, and the check before the plan.
mod trust_api;
/// Input and plan against wrong deletions and false successes.
mod trust_input;
/// The report's sidecar and lock, stopping a run, `--summary-json`.
mod trust_lifecycle;
