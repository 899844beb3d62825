//! ds100-offboard: bulk removal of RSA SecurID DS100 OTP credentials.

pub mod api;
pub mod input;
pub mod rate;
pub mod report;
