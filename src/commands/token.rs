//! `token`: mints one bearer token from a key file and prints it, for curl debugging. Stdout
//! gets the token and a newline, nothing else; warnings go to stderr.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::api::jwt;
use crate::api::keyfile::KeyFile;
use crate::config::TokenConfig;
use crate::exit_codes::ExitCode;

pub(crate) fn token(cfg: TokenConfig) -> anyhow::Result<ExitCode> {
    let key = KeyFile::load(&cfg.key_file)?;
    let secs = jwt::check_lifetime(cfg.lifetime).map_err(anyhow::Error::msg)?;
    let claims = key.claims(SystemTime::now(), secs);
    let token = key.sign(&claims)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", token.expose_secret())
        .and_then(|()| out.flush())
        .context("writing the token to stdout")?;
    Ok(ExitCode::Success)
}
