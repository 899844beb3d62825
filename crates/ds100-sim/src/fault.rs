//! Injected faults: the `--fault KIND,SCHEDULE[,on=ENDPOINT][,device=SERIAL]` grammar and when
//! each one fires.

use std::fmt;
use std::str::FromStr;

use crate::endpoint::Endpoint;
use crate::retry_after::RetryAfterStyle;

/// Shown with every parse error, so the operator never has to look the grammar up.
const FAULT_GRAMMAR: &str = "\
fault grammar: KIND,SCHEDULE[,on=delete|lookup|disable|enable|users][,device=SERIAL[|SERIAL...]]
  KIND:     400|401|403|404|409|429|500|502|503|504 (that status, JSON error body),
            429-date | 429-none (429 with an HTTP-date / with no Retry-After),
            html500, html200, html404 (a gateway's HTML 404 page), text404 (a plain-text
            404), error200 (200 with a JSON error body, nothing done), reset, hangup,
            reset-after-commit, slow, slow-after-commit, garbage, truncated, close,
            other-token, other-user (disable/enable only: 200 naming another token / another
            user than the request's credential, nothing changed)
  SCHEDULE: every=N (requests N, 2N, ...), nth=N (only the Nth), first=N (the first N),
            after=N (every request after the Nth),
            tokens=N (requests bearing one of the first N distinct tokens accepted),
            rate=P (probability 0..1, seeded by the fault seed)
  on=:      one endpoint only: delete, lookup (a device's credentials), users (the user
            lookup by email)
  device=:  only requests naming one of these device serials (counted among themselves);
            with device= the SCHEDULE may be left out: every such request
  examples: 503,every=3   reset-after-commit,nth=5   garbage,rate=0.2,on=lookup   429,first=2
            html404,every=1,on=delete,device=140100080   html404,every=1,on=users";

/// Status codes a fault may answer with; the ones the DS100 API and its gateways produce.
const FAULT_STATUSES: [u16; 10] = [400, 401, 403, 404, 409, 429, 500, 502, 503, 504];

/// One injected fault: what happens, on which requests, and on which endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub schedule: Schedule,
    /// `None`: the fault applies to every API endpoint.
    pub on: Option<Endpoint>,
    /// Empty: requests for any device. Otherwise only requests whose body names one of these
    /// device serials (exactly as written) are looked at and counted.
    pub devices: Vec<String>,
}

/// What a fault does to the request it fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer this status with a JSON error body before doing anything. A 429 carries the
    /// configured Retry-After style.
    Status(u16),
    /// Answer 429 with this Retry-After style, whatever the configuration says.
    TooManyRequests(RetryAfterStyle),
    /// Answer 500 with an HTML body (`text/html`), like a proxy error page.
    Html500,
    /// Answer 200 with an HTML sign-in page (`text/html`) and do nothing: a portal or SSO
    /// gateway in front of the API.
    Html200,
    /// Answer 404 with an HTML error page (`text/html`) and do nothing: a load balancer or
    /// reverse proxy that has no route for the path.
    Html404,
    /// Answer 404 with a plain-text body (`text/plain`) and do nothing: the bare "404 page not
    /// found" of many proxies and web frameworks.
    Text404,
    /// Answer 200 with a JSON error body and do nothing: an API or gateway that reports
    /// failure in the body instead of the status.
    Error200,
    /// Drop the connection with a TCP reset before doing anything.
    Reset,
    /// Close the connection (FIN, no answer) before doing anything: what a client sees when it
    /// sends on a kept-alive connection the server is closing as idle.
    HangUp,
    /// Perform the delete or lookup, then reset the connection without answering.
    ResetAfterCommit,
    /// Sleep `slow_delay`, then handle the request normally.
    Slow,
    /// Perform the delete or lookup, sleep `slow_delay`, then answer.
    SlowAfterCommit,
    /// Perform the operation, then answer 200 with a body that is not JSON.
    Garbage,
    /// Perform the operation, then answer 200 with a JSON array cut in the middle.
    Truncated,
    /// Answer normally, with `Connection: close`.
    Close,
    /// A PATCH (disable, enable) answered 200 naming another token serial than the request's
    /// user holds on the device, and nothing changed: a tenant that changed another credential.
    OtherToken,
    /// The same, naming another user.
    OtherUser,
}

impl FaultKind {
    /// Kinds that only make sense for the PATCH endpoints.
    pub(crate) fn patch_only(self) -> bool {
        matches!(self, FaultKind::OtherToken | FaultKind::OtherUser)
    }
}

/// Which of its matching requests a fault fires on. `n` counts from 1, per fault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Every(u64),
    Nth(u64),
    First(u64),
    /// Every request after the first N: a fault that starts later (the first N pass).
    After(u64),
    /// Requests whose bearer token is one of the first N distinct tokens the simulator
    /// accepted: "refuse the first token, whenever it arrives", independent of timing.
    Tokens(u64),
    Rate(f64),
}

impl Schedule {
    /// Whether the fault fires on its `n`th matching request (1-based), which bears the
    /// `token`th distinct token accepted (1-based). `draw` is a uniform number in [0, 1) from
    /// the seeded generator; only `Rate` looks at it.
    pub(crate) fn fires(self, n: u64, token: u64, draw: f64) -> bool {
        match self {
            Schedule::Every(every) => n.is_multiple_of(every),
            Schedule::Nth(nth) => n == nth,
            Schedule::First(first) => n <= first,
            Schedule::After(after) => n > after,
            Schedule::Tokens(tokens) => token <= tokens,
            Schedule::Rate(p) => draw < p,
        }
    }
}

impl Fault {
    /// Whether this fault looks at requests to `endpoint` (and counts them). A PATCH-only kind
    /// without `on=` looks at both PATCH endpoints.
    pub(crate) fn applies_to(&self, endpoint: Endpoint) -> bool {
        match self.on {
            Some(on) => on == endpoint,
            None => !self.kind.patch_only() || endpoint.is_patch(),
        }
    }

    /// Whether this fault looks at a request naming `device` (`None`: the body names none).
    pub(crate) fn applies_to_device(&self, device: Option<&str>) -> bool {
        self.devices.is_empty() || device.is_some_and(|d| self.devices.iter().any(|s| s == d))
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultKind, String> {
        let s = s.trim().to_ascii_lowercase();
        let kind = match s.as_str() {
            "429-date" | "429-http-date" => FaultKind::TooManyRequests(RetryAfterStyle::HttpDate),
            "429-none" => FaultKind::TooManyRequests(RetryAfterStyle::Omit),
            "429-seconds" => FaultKind::TooManyRequests(RetryAfterStyle::Seconds),
            "html500" | "html-500" => FaultKind::Html500,
            "html200" | "html-200" => FaultKind::Html200,
            "html404" | "html-404" => FaultKind::Html404,
            "text404" | "text-404" => FaultKind::Text404,
            "error200" | "error-200" => FaultKind::Error200,
            "reset" => FaultKind::Reset,
            "hangup" | "hang-up" => FaultKind::HangUp,
            "reset-after-commit" => FaultKind::ResetAfterCommit,
            "slow" => FaultKind::Slow,
            "slow-after-commit" => FaultKind::SlowAfterCommit,
            "garbage" => FaultKind::Garbage,
            "truncated" => FaultKind::Truncated,
            "close" => FaultKind::Close,
            "other-token" => FaultKind::OtherToken,
            "other-user" => FaultKind::OtherUser,
            other => match other.parse::<u16>() {
                Ok(code) if FAULT_STATUSES.contains(&code) => FaultKind::Status(code),
                _ => return Err(format!("unknown fault kind '{other}'")),
            },
        };
        Ok(kind)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Status(code) => write!(f, "{code}"),
            FaultKind::TooManyRequests(RetryAfterStyle::HttpDate) => f.write_str("429-date"),
            FaultKind::TooManyRequests(RetryAfterStyle::Omit) => f.write_str("429-none"),
            FaultKind::TooManyRequests(RetryAfterStyle::Seconds) => f.write_str("429-seconds"),
            FaultKind::Html500 => f.write_str("html500"),
            FaultKind::Html200 => f.write_str("html200"),
            FaultKind::Html404 => f.write_str("html404"),
            FaultKind::Text404 => f.write_str("text404"),
            FaultKind::Error200 => f.write_str("error200"),
            FaultKind::Reset => f.write_str("reset"),
            FaultKind::HangUp => f.write_str("hangup"),
            FaultKind::ResetAfterCommit => f.write_str("reset-after-commit"),
            FaultKind::Slow => f.write_str("slow"),
            FaultKind::SlowAfterCommit => f.write_str("slow-after-commit"),
            FaultKind::Garbage => f.write_str("garbage"),
            FaultKind::Truncated => f.write_str("truncated"),
            FaultKind::Close => f.write_str("close"),
            FaultKind::OtherToken => f.write_str("other-token"),
            FaultKind::OtherUser => f.write_str("other-user"),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(n) => write!(f, "every={n}"),
            Schedule::Nth(n) => write!(f, "nth={n}"),
            Schedule::First(n) => write!(f, "first={n}"),
            Schedule::After(n) => write!(f, "after={n}"),
            Schedule::Tokens(n) => write!(f, "tokens={n}"),
            Schedule::Rate(p) => write!(f, "rate={p}"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.kind, self.schedule)?;
        if let Some(on) = self.on {
            write!(f, ",on={on}")?;
        }
        if !self.devices.is_empty() {
            write!(f, ",device={}", self.devices.join("|"))?;
        }
        Ok(())
    }
}

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{key}={value}: expected a whole number of at least 1"
        )),
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        parse_fault(s).map_err(|why| format!("bad --fault '{s}': {why}\n{FAULT_GRAMMAR}"))
    }
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    let mut parts = s.split(',');
    let kind_text = parts.next().unwrap_or_default().trim();
    if kind_text.is_empty() {
        return Err("missing KIND".to_string());
    }
    let kind: FaultKind = kind_text.parse()?;
    let mut schedule = None;
    let mut on = None;
    let mut devices = Vec::new();
    for part in parts {
        let part = part.trim();
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("'{part}' is not KEY=VALUE"));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let parsed = match key.as_str() {
            "every" => Schedule::Every(parse_count(&key, value)?),
            "nth" => Schedule::Nth(parse_count(&key, value)?),
            "first" => Schedule::First(parse_count(&key, value)?),
            "after" => Schedule::After(parse_count(&key, value)?),
            "tokens" => Schedule::Tokens(parse_count(&key, value)?),
            "rate" => match value.parse::<f64>() {
                Ok(p) if (0.0..=1.0).contains(&p) => Schedule::Rate(p),
                _ => return Err(format!("rate={value}: expected a probability from 0 to 1")),
            },
            "on" => {
                if on.replace(value.parse::<Endpoint>()?).is_some() {
                    return Err("on= given twice".to_string());
                }
                continue;
            }
            "device" => {
                if !devices.is_empty() {
                    return Err("device= given twice: list serials as device=A|B".to_string());
                }
                devices = value
                    .split('|')
                    .map(str::trim)
                    .map(str::to_string)
                    .collect();
                if devices.iter().any(String::is_empty) {
                    return Err(format!("device={value}: expected SERIAL or SERIAL|SERIAL"));
                }
                continue;
            }
            other => return Err(format!("unknown key '{other}'")),
        };
        if schedule.replace(parsed).is_some() {
            return Err("more than one SCHEDULE".to_string());
        }
    }
    if kind.patch_only() && on.is_some_and(|on: Endpoint| !on.is_patch()) {
        return Err(format!(
            "{kind} answers a PATCH; use on=disable or on=enable (or leave on= out for both)"
        ));
    }
    // A fault aimed at chosen devices means "those devices answer this", unless told otherwise.
    let schedule = match schedule {
        Some(schedule) => schedule,
        None if !devices.is_empty() => Schedule::Every(1),
        None => return Err("missing SCHEDULE".to_string()),
    };
    Ok(Fault {
        kind,
        schedule,
        on,
        devices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(s: &str) -> Fault {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_documented_examples() {
        assert_eq!(
            fault("503,every=3"),
            Fault {
                kind: FaultKind::Status(503),
                schedule: Schedule::Every(3),
                on: None,
                devices: vec![],
            }
        );
        assert_eq!(
            fault("reset-after-commit,nth=5"),
            Fault {
                kind: FaultKind::ResetAfterCommit,
                schedule: Schedule::Nth(5),
                on: None,
                devices: vec![],
            }
        );
        assert_eq!(
            fault("garbage,rate=0.2,on=lookup"),
            Fault {
                kind: FaultKind::Garbage,
                schedule: Schedule::Rate(0.2),
                on: Some(Endpoint::Lookup),
                devices: vec![],
            }
        );
        assert_eq!(fault("429,first=2").kind, FaultKind::Status(429));
        assert_eq!(fault("slow,nth=1").kind, FaultKind::Slow);
        assert_eq!(
            fault("429-date,every=1").kind,
            FaultKind::TooManyRequests(RetryAfterStyle::HttpDate)
        );
        assert_eq!(
            fault("429-none,every=1").kind,
            FaultKind::TooManyRequests(RetryAfterStyle::Omit)
        );
        assert_eq!(
            fault(" HTML500 , on=delete , first=1 ").on,
            Some(Endpoint::Delete)
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "503,every=3",
            "reset-after-commit,nth=5",
            "garbage,rate=0.2,on=lookup",
            "429-date,first=2,on=delete",
            "429-none,every=1",
            "html500,nth=2",
            "html200,every=1",
            "403,tokens=1",
            "truncated,every=4",
            "slow-after-commit,first=1",
            "close,every=2",
            "reset,rate=1",
            "hangup,every=7,on=lookup",
            "html404,every=1",
            "text404,nth=2,on=lookup",
            "error200,first=1,on=delete,device=140100080",
            "html404,every=1,device=1|02",
            "other-token,nth=2,on=disable",
            "other-user,every=1",
            "500,after=1,on=disable,device=7",
        ] {
            assert_eq!(fault(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_faults_and_shows_the_grammar() {
        for bad in [
            "",
            "503",
            "418,every=1",
            "explode,every=1",
            "503,every=0",
            "503,nth=-1",
            "503,first=x",
            "503,rate=1.5",
            "503,rate=abc",
            "503,every=2,nth=3",
            "503,every=2,on=patch",
            "503,every=2,on=delete,on=lookup",
            "503,sometimes",
            "503,when=2",
            "html404,every=1,device=",
            "html404,every=1,device=1||2",
            "html404,every=1,device=1,device=2",
            "other-token,every=1,on=lookup",
        ] {
            let err = bad.parse::<Fault>().expect_err(bad);
            assert!(err.contains("KIND,SCHEDULE"), "{bad}: {err}");
        }
    }

    #[test]
    fn schedules_fire_on_the_right_requests() {
        let fired =
            |s: Schedule| -> Vec<u64> { (1..=10).filter(|&n| s.fires(n, 1, 0.5)).collect() };
        assert_eq!(fired(Schedule::Every(3)), vec![3, 6, 9]);
        assert_eq!(fired(Schedule::Every(1)), (1..=10).collect::<Vec<_>>());
        assert_eq!(fired(Schedule::Nth(4)), vec![4]);
        assert_eq!(fired(Schedule::First(2)), vec![1, 2]);
        assert_eq!(fired(Schedule::After(8)), vec![9, 10]);
        assert_eq!(
            fired(Schedule::Tokens(1)).len(),
            10,
            "every request of token 1"
        );
        assert!(Schedule::Tokens(2).fires(7, 2, 0.5));
        assert!(!Schedule::Tokens(2).fires(1, 3, 0.5));
        assert!(Schedule::Rate(0.2).fires(1, 1, 0.1));
        assert!(!Schedule::Rate(0.2).fires(1, 1, 0.2));
        assert!(!Schedule::Rate(0.0).fires(1, 1, 0.0));
        assert!(Schedule::Rate(1.0).fires(1, 1, 0.999_999));
    }

    #[test]
    fn endpoint_filter() {
        let f = fault("503,every=1,on=lookup");
        assert!(f.applies_to(Endpoint::Lookup));
        assert!(!f.applies_to(Endpoint::Delete));
        let any = fault("503,every=1");
        assert!(any.applies_to(Endpoint::Delete) && any.applies_to(Endpoint::Lookup));
        assert!(any.applies_to(Endpoint::Disable) && any.applies_to(Endpoint::Enable));
        let on_disable = fault("503,every=1,on=disable");
        assert!(
            on_disable.applies_to(Endpoint::Disable) && !on_disable.applies_to(Endpoint::Enable)
        );
        let other = fault("other-token,every=1");
        assert!(other.applies_to(Endpoint::Disable) && other.applies_to(Endpoint::Enable));
        assert!(!other.applies_to(Endpoint::Lookup) && !other.applies_to(Endpoint::Delete));
    }

    #[test]
    fn device_filter() {
        let f = fault("html404,every=1,device=0140 | 77");
        assert_eq!(f.devices, ["0140", "77"]);
        assert!(f.applies_to_device(Some("0140")) && f.applies_to_device(Some("77")));
        // Serials are compared as written: a lost leading zero is another device.
        assert!(!f.applies_to_device(Some("140")));
        assert!(!f.applies_to_device(None));
        assert!(fault("html404,every=1").applies_to_device(None));
        assert_eq!(
            fault("text404,on=lookup,device=9").schedule,
            Schedule::Every(1)
        );
    }
}
