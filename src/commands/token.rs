//! `token`: mints one bearer token from a key file and prints it, for curl debugging. Stdout
//! gets the token and a newline, nothing else; warnings go to stderr.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, bail};
use secrecy::ExposeSecret;

use crate::api::credentials;
use crate::api::jwt;
use crate::api::keyfile::{KEY_FILE_ENV, KeyFile};
use crate::cli::TokenArgs;
use crate::exit_codes::ExitCode;

pub fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let Some(path) = credentials::key_file_path(args.key_file.as_deref(), &|n| std::env::var_os(n))
    else {
        bail!(
            "no key file: pass --key-file PATH (the Administration API key file) or set {KEY_FILE_ENV}"
        );
    };
    let key = KeyFile::load(&path)?;
    let lifetime = args.token_lifetime.unwrap_or(jwt::DEFAULT_LIFETIME);
    let secs = jwt::check_lifetime(lifetime).map_err(anyhow::Error::msg)?;
    let claims = jwt::Claims::new(&key, SystemTime::now(), secs);
    let token = jwt::sign(&key, &claims)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", token.expose_secret())
        .and_then(|()| out.flush())
        .context("writing the token to stdout")?;
    Ok(ExitCode::Success)
}
