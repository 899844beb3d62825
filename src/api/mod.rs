//! The DS100 HTTP API: wire types, endpoints, the client and its credentials; the user lookup
//! by email.

pub(crate) mod answer;
pub(crate) mod auth;
mod bearer;
pub(crate) mod client;
pub(crate) mod credentials;
mod der;
pub(crate) mod endpoints;
pub(crate) mod exchange;
pub(crate) mod jwt;
pub(crate) mod keyfile;
pub(crate) mod lookup;
pub(crate) mod oauth;
pub(crate) mod oauth_key;
pub(crate) mod patch;
mod secret_file;
pub(crate) mod tls;
pub(crate) mod types;
pub(crate) mod users;
