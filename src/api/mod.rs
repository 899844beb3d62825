//! The DS100 HTTP API: wire types, endpoints, the client and its credentials.

pub(crate) mod answer;
pub mod auth;
pub mod client;
pub mod endpoints;
pub mod exchange;
pub mod jwt;
pub mod keyfile;
pub mod tls;
pub mod types;
