//! The DS100 HTTP API: wire types, endpoints, the client and its credentials.

pub(crate) mod answer;
pub(crate) mod auth;
pub mod client;
pub(crate) mod credentials;
mod direct;
pub(crate) mod endpoints;
pub(crate) mod jwt;
pub(crate) mod keyfile;
pub(crate) mod lookup;
mod secret_file;
pub mod types;
