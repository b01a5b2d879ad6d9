//! Properties of the machine over arbitrary event sequences with arbitrary durations
//! (`Duration::ZERO` to `Duration::MAX`, in options and in the game's requests): a seeded
//! generator drives thousands of runs, each a sequence the driver could produce (a start or a
//! spawn failure only after `SpawnChild`, an exit only of a running game, a self-stop answer
//! only after `CallSelfStop`, a timer only while it runs), with signals, requests, player
//! counts and log lines at any time. After every event it checks:
//!
//! - self-stop is called at most once;
//! - nothing happens after `Exit`, and `Exit` comes once;
//! - every stop starts the kill timer (the grace period minus the margin);
//! - the machine never exits while its self-stop is in flight, unless that stop's kill timer
//!   has fired, nor while the game or what it left in its process group runs (the game's end
//!   comes with or without a group left, and `GroupGone` only after it);
//! - no panic, for any duration;
//! - in sidecar mode (a quarter of the runs), the game is never signalled, killed, restarted
//!   or hooked, and the agent never suspends itself;
//!
//! and at the end that a stop, driven on, always ends in `Exit`. A failing run prints its seed;
//! `PROPERTY_SEED=<seed>` replays it alone.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::*;
use crate::exit_code::{ChildOutcome, ExitCodeMap};
use crate::lifecycle::event::GameRequest;
use crate::lifecycle::policy::{OnExitPolicy, RestartBudget};
use crate::units::SignalMap;

/// SplitMix64: small, seedable, good enough to spread choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Any duration, weighted towards the extremes where arithmetic breaks.
    fn duration(&mut self) -> Duration {
        match self.below(8) {
            0 => Duration::ZERO,
            1 => Duration::from_nanos(self.below(1_000_000_000)),
            2 => Duration::from_millis(self.below(3_600_000)),
            3 => Duration::from_secs(self.below(365 * 24 * 3600)),
            4 => Duration::MAX,
            5 => Duration::new(u64::MAX - self.below(10), 999_999_999),
            6 => Duration::from_secs(self.next()),
            _ => Duration::new(self.next(), (self.next() % 1_000_000_000) as u32),
        }
    }

    fn maybe_duration(&mut self) -> Option<Duration> {
        self.chance(60).then(|| self.duration())
    }

    fn signal(&mut self) -> Signal {
        const SIGNALS: [Signal; 9] = [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
            Signal::SIGKILL,
            Signal::SIGSEGV,
        ];
        SIGNALS[self.below(SIGNALS.len() as u64) as usize]
    }
}

fn options(rng: &mut Rng) -> MachineOptions {
    const POLICIES: [&str; 5] = [
        "0=stop,*=exit",
        "*=restart",
        "0=stop,*=restart",
        "*=stop",
        "3=restart,124=stop,*=exit",
    ];
    let policy = POLICIES[rng.below(POLICIES.len() as u64) as usize];
    let initial_backoff = rng.duration();
    let sidecar = rng.chance(25);
    MachineOptions {
        stop_signal: rng.signal(),
        forward_signal_map: if rng.chance(30) {
            SignalMap::parse("TERM=INT,HUP=USR1").unwrap_or_default()
        } else {
            SignalMap::default()
        },
        kill_after: rng.duration(),
        exit_code_map: if rng.chance(30) {
            ExitCodeMap::parse("143=0,137=0").unwrap_or_default()
        } else {
            ExitCodeMap::default()
        },
        on_exit: OnExitPolicy::parse(policy).unwrap_or_default(),
        restart: RestartBudget {
            max_restarts: rng.below(6) as u32,
            window: rng.duration(),
            initial_backoff,
            max_backoff: initial_backoff.max(rng.duration()),
        },
        idle_timeout: rng.maybe_duration(),
        empty_timeout: rng.maybe_duration(),
        max_match_duration: rng.maybe_duration(),
        heartbeat_timeout: rng.maybe_duration(),
        self_stop_wait: rng.duration(),
        // The options refuse --pre-stop in sidecar mode.
        pre_stop_hook: !sidecar && rng.chance(30),
        is_pid1: rng.chance(50),
        sidecar,
    }
}

/// What the driver knows and the machine's effects promise: which timers run, whether a
/// game runs or is being spawned, whether a self-stop or a hook awaits its end.
#[derive(Default)]
struct World {
    timers: BTreeSet<Timer>,
    spawn_pending: bool,
    self_stop_pending: bool,
    self_stop_calls: u32,
    hook_running: bool,
    exited: bool,
}

impl World {
    fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::StartTimer(timer, _) => {
                    self.timers.insert(*timer);
                }
                Action::CancelTimer(timer) => {
                    self.timers.remove(timer);
                }
                Action::CallSelfStop => {
                    self.self_stop_calls += 1;
                    self.self_stop_pending = true;
                }
                Action::SpawnChild => self.spawn_pending = true,
                Action::RunPreStopHook(_) => self.hook_running = true,
                Action::Exit(_) => self.exited = true,
                Action::SignalGroup(_)
                | Action::KillGroup
                | Action::SuspendSelf
                | Action::Note(_) => {}
            }
        }
    }
}

/// One event the driver could feed now.
fn next_event(rng: &mut Rng, machine: &Machine, world: &mut World) -> Event {
    loop {
        let event = match rng.below(15) {
            0 if world.spawn_pending => {
                world.spawn_pending = false;
                if rng.chance(85) {
                    Event::ChildStarted
                } else {
                    Event::ChildSpawnFailed([126, 127, 70][rng.below(3) as usize])
                }
            }
            // Beside the game: the watched process ended, its code assumed 0, no group.
            1 if machine.child_alive && machine.options.sidecar => Event::ChildExited {
                outcome: ChildOutcome::Exited(0),
                group_left: false,
            },
            1 if machine.child_alive => Event::ChildExited {
                outcome: if rng.chance(70) {
                    ChildOutcome::Exited([0, 1, 3, 42, 124, 255][rng.below(6) as usize])
                } else {
                    ChildOutcome::Signaled(rng.signal())
                },
                group_left: rng.chance(30),
            },
            // What the game left in its group ends (the driver only says so once it has).
            14 if machine.group_alive && !machine.child_alive => Event::GroupGone,
            2 if world.self_stop_pending => {
                world.self_stop_pending = false;
                if rng.chance(60) {
                    Event::SelfStopAccepted
                } else {
                    Event::SelfStopFailed("gave up".into())
                }
            }
            3 if world.hook_running => {
                world.hook_running = false;
                Event::PreStopHookFinished
            }
            4 | 5 if !world.timers.is_empty() => {
                let running: Vec<Timer> = world.timers.iter().copied().collect();
                let timer = running[rng.below(running.len() as u64) as usize];
                world.timers.remove(&timer);
                Event::TimerFired(timer)
            }
            6 => Event::Signal(rng.signal()),
            7 => Event::Game(GameRequest::Ready),
            8 => Event::Game(GameRequest::Heartbeat),
            9 => Event::Game(GameRequest::MatchEnd {
                reason: rng.chance(50).then(|| "gg".to_owned()),
                delay: rng.maybe_duration(),
            }),
            10 => Event::Players(rng.below(4) as usize),
            11 => Event::LogLineMatched("MATCH OVER".into()),
            12 => Event::Game(GameRequest::PlayerConnected("p".into())),
            13 => Event::Game(GameRequest::PlayerDisconnected("p".into())),
            _ => continue,
        };
        return event;
    }
}

fn is_stopping(state: &State) -> bool {
    matches!(state, State::Stopping { .. })
}

fn killed(state: &State) -> bool {
    matches!(state, State::Stopping { killed: true, .. })
}

/// One run; panics (with the seed in the message) when a property fails.
fn run(seed: u64) {
    let mut rng = Rng(seed);
    let options = options(&mut rng);
    let kill_after = options.kill_after;
    let mut machine = Machine::new(options);
    let mut world = World::default();
    let mut now = Duration::ZERO;
    world.apply(&machine.handle(now, Event::ChildStarted));
    let steps = 20 + rng.below(80);
    for step in 0..steps {
        now = now.saturating_add(rng.duration());
        let event = next_event(&mut rng, &machine, &mut world);
        let was_stopping = is_stopping(machine.state());
        let was_killed = killed(machine.state());
        let in_flight_before = machine.self_stop() == &SelfStopProgress::InFlight;
        let exited_before = world.exited;
        let shown = format!("{event:?}");
        let is_kill_fire = event == Event::TimerFired(Timer::Kill);
        let actions = machine.handle(now, event);
        let context = || format!("seed {seed}, step {step}, event {shown}: {actions:?}");

        if exited_before {
            assert!(actions.is_empty(), "something after Exit; {}", context());
            continue;
        }
        world.apply(&actions);
        assert!(
            world.self_stop_calls <= 1,
            "a second self-stop; {}",
            context()
        );
        let exits = actions
            .iter()
            .filter(|a| matches!(a, Action::Exit(_)))
            .count();
        assert!(exits <= 1, "two exits; {}", context());
        assert!(
            exits == 0 || (!machine.child_alive && !machine.group_alive),
            "exited with the game or what it left in its group still running; {}",
            context()
        );
        if is_stopping(machine.state()) && !was_stopping {
            assert!(
                actions.contains(&Action::StartTimer(Timer::Kill, kill_after)),
                "a stop without its kill timer; {}",
                context()
            );
        }
        if machine.options.sidecar {
            assert!(
                !actions.iter().any(|a| matches!(
                    a,
                    Action::SignalGroup(_)
                        | Action::KillGroup
                        | Action::SpawnChild
                        | Action::RunPreStopHook(_)
                        | Action::SuspendSelf
                )),
                "sidecar mode touched the game or suspended itself; {}",
                context()
            );
        }
        let in_flight_after = machine.self_stop() == &SelfStopProgress::InFlight;
        if exits == 1 && in_flight_before && in_flight_after {
            assert!(
                was_killed || (was_stopping && is_kill_fire),
                "exited with the self-stop in flight and grace left; {}",
                context()
            );
        }
    }
    // A stop, driven on, ends: the kill timer fires, a killed game exits, the agent exits.
    if is_stopping(machine.state()) && !world.exited {
        if world.timers.remove(&Timer::Kill) {
            now = now.saturating_add(kill_after);
            world.apply(&machine.handle(now, Event::TimerFired(Timer::Kill)));
        }
        if machine.child_alive {
            let killed_by = ChildOutcome::Signaled(Signal::SIGKILL);
            let exited = Event::ChildExited {
                outcome: killed_by,
                group_left: false,
            };
            world.apply(&machine.handle(now, exited));
        }
        // SIGKILL took the whole group.
        if machine.group_alive {
            world.apply(&machine.handle(now, Event::GroupGone));
        }
        assert!(
            world.exited,
            "seed {seed}: a stop that never ends: {:?}",
            machine.state()
        );
    }
}

#[test]
fn arbitrary_event_sequences_keep_the_machines_invariants() {
    if let Some(seed) = std::env::var("PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed);
        return;
    }
    for seed in 0..5_000 {
        run(seed);
    }
}
