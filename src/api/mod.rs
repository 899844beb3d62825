//! The DS100 HTTP API: wire types, endpoints, the client and its credentials.

pub(crate) mod answer;
pub mod auth;
pub mod client;
mod direct;
pub mod endpoints;
pub mod jwt;
pub mod keyfile;
pub mod types;
