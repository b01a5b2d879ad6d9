//! edgegap-agent: the entrypoint of a game-server container on Edgegap.
//!
//! `main.rs` only wires these modules together; each module's doc says what it owns.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod agones;
pub mod api;
pub mod config;
pub mod exit_code;
pub mod lifecycle;
pub mod logging;
#[allow(unsafe_code)]
pub mod os;
pub mod platform;
pub mod stdio;
pub mod supervisor;
pub mod units;
pub mod wiring;
