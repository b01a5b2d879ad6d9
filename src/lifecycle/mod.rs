//! The match lifecycle, decided in one pure state machine: its inputs ([`Event`], with the
//! game's [`GameRequest`]s and the [`Timer`]s), the [`machine`] itself with its transition
//! table, the exit-code [`policy`] and restart budget, the [`AgentStatus`] the supervisor
//! publishes from it, and the [`Roster`] of players the API and the driver share. Nothing here
//! touches a process, a socket or a clock.

mod event;
pub mod machine;
pub mod policy;
mod roster;
mod status;

pub use event::{Event, GameRequest, Timer};
pub use machine::{Action, EndReason, Machine, MachineOptions, State, StopCause};
pub use policy::{ExitAction, OnExitPolicy, RestartBudget};
pub use roster::Roster;
pub use status::{AgentStatus, Lifecycle, SelfStopProgress};
