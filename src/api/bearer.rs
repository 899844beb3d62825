//! One bearer token as a request carries it: the `Authorization` header value, marked
//! sensitive, and the generation that tells tokens apart without looking at them.

use std::fmt;

use anyhow::Context;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

/// One bearer token, ready to put on a request. `generation` tells tokens apart without
/// looking at them (a worker that got a 403 says which token was refused).
pub struct Bearer {
    header: HeaderValue,
    generation: u64,
}

impl Bearer {
    pub(crate) fn new(token: &SecretString, generation: u64) -> anyhow::Result<Bearer> {
        let mut header = HeaderValue::from_str(&format!("{PREFIX}{}", token.expose_secret()))
            .context("the token contains characters that cannot go in an HTTP header")?;
        // Marked sensitive so hyper, reqwest and our own Debug output print "Sensitive".
        header.set_sensitive(true);
        Ok(Bearer { header, generation })
    }

    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// `body` with every copy of this token cut out (`[redacted]`). Answers are quoted into
    /// the report, logs and messages, and a gateway or debugging proxy may echo the request's
    /// Authorization header back: no heuristic finds every spelling of that, the token itself
    /// does. Also its JSON-escaped form (`/` as `\/`). Tokens too short to be real are left
    /// alone: cutting them would mangle ordinary answers.
    pub(crate) fn redact(&self, body: &[u8]) -> Vec<u8> {
        let token = &self.header.as_bytes()[PREFIX.len()..];
        let mut out = body.to_vec();
        if token.len() < MIN_REDACTED_LEN {
            return out;
        }
        let escaped: Vec<u8> = token
            .iter()
            .flat_map(|&b| {
                if b == b'/' {
                    vec![b'\\', b'/']
                } else {
                    vec![b]
                }
            })
            .collect();
        for needle in [token, escaped.as_slice()] {
            out = replace_all(&out, needle, REDACTED);
        }
        out
    }
}

/// What a request's Authorization header starts with.
const PREFIX: &str = "Bearer ";
/// What replaces a token in a quoted answer.
const REDACTED: &[u8] = b"[redacted]";
/// Real bearer tokens (JWTs, opaque access tokens) are far longer.
const MIN_REDACTED_LEN: usize = 12;

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_token_is_cut_out_of_an_answer() {
        let token = SecretString::from("ab/cd+ef-0123456789".to_string());
        let bearer = Bearer::new(&token, 1).unwrap();
        let body = br#"{"auth":"Bearer ab/cd+ef-0123456789","esc":"ab\/cd+ef-0123456789"}"#;
        let out = String::from_utf8(bearer.redact(body)).unwrap();
        assert_eq!(out, r#"{"auth":"Bearer [redacted]","esc":"[redacted]"}"#);
        // A token too short to be real leaves answers as they are.
        let short = Bearer::new(&SecretString::from("x".to_string()), 1).unwrap();
        assert_eq!(short.redact(b"[{\"x\":1}]"), b"[{\"x\":1}]");
    }
}
