//! The DS100 HTTP API: wire types, endpoints, the client and its credentials; the user lookup
//! by email.

pub(crate) mod answer;
pub(crate) mod auth;
pub mod client;
pub(crate) mod credentials;
pub(crate) mod endpoints;
pub(crate) mod exchange;
pub(crate) mod jwt;
pub(crate) mod keyfile;
pub(crate) mod lookup;
mod secret_file;
pub(crate) mod tls;
pub mod types;
pub(crate) mod users;
