//! The Edgegap runtime contract as code, in one place for both of its sides: the agent reads
//! it (`src/platform/`), the emulator writes it (`emulator/`). It holds the `ARBITRIUM_*`
//! variable names and value formats ([`vars`]), the `PORT` object and the
//! `ARBITRIUM_PORTS_MAPPING` document ([`ports`]), the deployment's location, the context
//! document and the self-stop and context URL paths ([`context`]), and the whole injected
//! environment built from typed values ([`injected`]).
//!
//! Everything here is data and pure functions: no I/O, no error policy. Readers are lenient
//! (optional fields, unknown fields ignored) and leave it to the caller to decide what a
//! missing value means; the facts and the unconfirmed guesses are those of
//! `edgegap-contract.md`.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod context;
pub mod injected;
pub mod ports;
pub mod vars;

pub use context::{context_path, self_stop_path, Context, Location};
pub use injected::InjectedEnv;
pub use ports::{PlatformPort, PortsMapping};
