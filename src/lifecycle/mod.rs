//! The match lifecycle, decided in one pure state machine: its inputs ([`Event`], with the
//! game's [`GameRequest`]s and the [`Timer`]s), the [`machine`] itself with its transition
//! table, the exit-code [`policy`] and restart budget, and the [`AgentStatus`] the supervisor
//! publishes from it. Nothing here touches a process, a socket or a clock.

mod event;
pub mod machine;
pub mod policy;
mod status;

pub use event::{Event, GameRequest, Timer};
pub use machine::{Action, EndReason, Machine, MachineOptions, State, StopCause};
pub use policy::{ExitAction, OnExitPolicy, RestartBudget};
pub use status::{AgentStatus, Lifecycle, SelfStopProgress};
