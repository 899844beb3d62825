//! The DS100 HTTP API: wire types, endpoints, the client and its credentials.

pub mod types;
