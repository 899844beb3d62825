//! The DS100 HTTP API: wire types, endpoints, the client and its credentials.

pub(crate) mod answer;
pub mod auth;
pub mod client;
pub mod credentials;
mod direct;
pub mod endpoints;
pub mod jwt;
pub mod keyfile;
pub(crate) mod lookup;
mod secret_file;
pub mod types;
