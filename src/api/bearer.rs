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
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
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
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}
