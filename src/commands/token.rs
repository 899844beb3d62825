//! `token`: one fresh bearer token — minted from a key file, or fetched for an OAuth API
//! client from its issuer — printed for curl debugging. Stdout gets the token and a newline,
//! nothing else; warnings and errors go to stderr.

use std::io::Write;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::api::auth::TokenSource;
use crate::config::TokenConfig;
use crate::exit_codes::ExitCode;

pub(crate) async fn token(cfg: TokenConfig) -> anyhow::Result<ExitCode> {
    let source = TokenSource::new(&cfg.credentials, &cfg.network).await?;
    let bearer = source.current().await?;
    // The header value is "Bearer <token>"; the token is what curl users paste after it.
    let header = bearer
        .header()
        .to_str()
        .context("the token is not printable text")?;
    let token =
        secrecy::SecretString::from(header.strip_prefix("Bearer ").unwrap_or(header).to_string());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", token.expose_secret())
        .and_then(|()| out.flush())
        .context("writing the token to stdout")?;
    Ok(ExitCode::Success)
}
