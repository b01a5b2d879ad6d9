//! Arbitrary API bodies and durations down to the driver's timers, in-process, on paused tokio
//! time: the real router (`api::handle`) answers POSTs with arbitrary bodies (and match ends
//! with arbitrary `delay` numbers and strings); its requests become the machine's events
//! exactly as the driver makes them (`supervisor::event_for_request`, the shared `Roster`);
//! the machine runs with arbitrary durations in every option; its timer actions go to the
//! driver's own `Timers`, which fire as the clock is advanced by arbitrary amounts; the status
//! is published with the kill deadline as the driver does. Signals, the game's exits and
//! starts, and the self-stop's answers come in between, as the driver could feed them.
//!
//! Input layout: the options — nine durations (each a tag byte and its payload, see
//! `Input::duration`) and three bytes (the `--on-exit` policy, the restart budget, the
//! pre-stop hook), in the order `options` reads them — then operations until the input runs
//! out (an op byte and its payload, see `run`).
//!
//! It asserts that nothing panics or overflows; that every answer is a status the API
//! documents; that self-stop is called at most once and nothing happens after `Exit`; that
//! every stop starts the kill timer; and that the machine's player count is always the
//! roster's (one source of truth).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use edgegap_agent::api::{handle, ApiState, Metrics};
use edgegap_agent::exit_code::{ChildOutcome, ExitCodeMap};
use edgegap_agent::lifecycle::{
    Action, AgentStatus, Event, Lifecycle, Machine, MachineOptions, OnExitPolicy, RestartBudget,
    State, Timer,
};
use edgegap_agent::supervisor::event_for_request;
use edgegap_agent::supervisor::timers::Timers;
use edgegap_agent::units::SignalMap;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use libfuzzer_sys::fuzz_target;
use nix::sys::signal::Signal;
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Statuses the POST routes may answer with.
const STATUSES: &[u16] = &[200, 202, 400, 404, 413, 503];
/// The longest a single clock advance may be (tokio's paused clock adds it to an `Instant`).
const MAX_ADVANCE: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
const MAX_OPS: usize = 200;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a paused current-thread runtime")
    })
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        for b in &mut bytes {
            *b = self.byte().unwrap_or(0);
        }
        u64::from_le_bytes(bytes)
    }

    fn bytes(&mut self, len: usize) -> &[u8] {
        let len = len.min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken
    }

    /// A tag byte, then: 0 zero, 1 milliseconds (u16), 2 seconds (u32), 3 `Duration::MAX`,
    /// 4 nanoseconds (u64), 5 seconds (u64) and nanoseconds, 6 none (for an `Option`).
    fn duration(&mut self) -> Option<Duration> {
        Some(match self.byte().unwrap_or(0) % 7 {
            0 => Duration::ZERO,
            1 => Duration::from_millis(self.u64() & 0xffff),
            2 => Duration::from_secs(self.u64() & 0xffff_ffff),
            3 => Duration::MAX,
            4 => Duration::from_nanos(self.u64()),
            5 => Duration::new(self.u64(), (self.u64() % 1_000_000_000) as u32),
            _ => return None,
        })
    }

    fn any_duration(&mut self) -> Duration {
        self.duration().unwrap_or(Duration::ZERO)
    }
}

fn options(input: &mut Input) -> MachineOptions {
    let initial_backoff = input.any_duration();
    let max_backoff = input.any_duration().max(initial_backoff);
    let policy = ["0=stop,*=exit", "*=restart", "*=stop", "0=stop,*=restart"]
        [usize::from(input.byte().unwrap_or(0) % 4)];
    MachineOptions {
        stop_signal: Signal::SIGTERM,
        forward_signal_map: SignalMap::default(),
        kill_after: input.any_duration(),
        exit_code_map: ExitCodeMap::default(),
        on_exit: OnExitPolicy::parse(policy).unwrap_or_default(),
        restart: RestartBudget {
            max_restarts: u32::from(input.byte().unwrap_or(0) % 4),
            window: input.any_duration(),
            initial_backoff,
            max_backoff,
        },
        idle_timeout: input.duration(),
        empty_timeout: input.duration(),
        max_match_duration: input.duration(),
        heartbeat_timeout: input.duration(),
        self_stop_wait: input.any_duration(),
        pre_stop_hook: input.byte().unwrap_or(0) & 1 == 1,
        is_pid1: input.byte().unwrap_or(0) & 1 == 1,
        sidecar: false,
    }
}

/// The driver's side, minus the processes: the machine, its timers, what it promised.
struct Driver {
    machine: Machine,
    timers: Timers,
    started: Instant,
    kill_deadline: Option<Instant>,
    kill_after: Duration,
    child_alive: bool,
    spawn_pending: bool,
    self_stop_pending: bool,
    self_stop_calls: u32,
    exited: bool,
}

impl Driver {
    fn feed(&mut self, event: Event, status: &watch::Sender<AgentStatus>) {
        let was_stopping = matches!(self.machine.state(), State::Stopping { .. });
        let actions = self.machine.handle(self.started.elapsed(), event);
        if self.exited {
            assert!(actions.is_empty(), "something after Exit: {actions:?}");
            return;
        }
        if !was_stopping && matches!(self.machine.state(), State::Stopping { .. }) {
            assert!(
                actions.contains(&Action::StartTimer(Timer::Kill, self.kill_after)),
                "a stop without its kill timer: {actions:?}"
            );
        }
        for action in &actions {
            if let Some((Timer::Kill, deadline)) = self.timers.apply(action) {
                self.kill_deadline = deadline;
            }
            match action {
                Action::CallSelfStop => {
                    self.self_stop_calls += 1;
                    self.self_stop_pending = true;
                    assert!(self.self_stop_calls <= 1, "a second self-stop");
                }
                Action::SpawnChild => self.spawn_pending = true,
                Action::Exit(_) => self.exited = true,
                _ => {}
            }
        }
        // Publish as the driver does, the stop's deadline also as wall-clock time.
        let lifecycle = Lifecycle::of(self.machine.state(), self.kill_deadline);
        status.send_modify(|s| {
            s.lifecycle = lifecycle;
            s.child_pid = self.child_alive.then_some(42);
        });
        let _ = status.borrow().to_json();
    }

    /// Fires every timer that is due now.
    async fn fire_due(&mut self, status: &watch::Sender<AgentStatus>) {
        for _ in 0..32 {
            match tokio::time::timeout(Duration::ZERO, self.timers.next()).await {
                Ok(timer) => self.feed(Event::TimerFired(timer), status),
                Err(_) => return,
            }
        }
    }
}

async fn post(state: &ApiState, path: &str, body: Vec<u8>) {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .body(Full::new(Bytes::from(body)))
        .expect("a request");
    let response = handle(request, state).await;
    let code = response.status().as_u16();
    assert!(STATUSES.contains(&code), "unexpected {code} for {path}");
    let _ = response.into_body().collect().await;
}

async fn run(data: &[u8]) {
    let mut input = Input(data);
    let options = options(&mut input);
    let kill_after = options.kill_after;
    let (request_tx, mut requests) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(AgentStatus::starting());
    let state = ApiState::new(
        request_tx,
        status_rx,
        json!({}),
        None,
        None,
        Arc::new(Metrics::default()),
    );
    let roster = state.roster();
    let mut driver = Driver {
        machine: Machine::new(options),
        timers: Timers::default(),
        started: Instant::now(),
        kill_deadline: None,
        kill_after,
        child_alive: true,
        spawn_pending: false,
        self_stop_pending: false,
        self_stop_calls: 0,
        exited: false,
    };
    driver.feed(Event::ChildStarted, &status_tx);

    for _ in 0..MAX_OPS {
        let Some(op) = input.byte() else { break };
        match op % 9 {
            0 => {
                let len = usize::from(input.byte().unwrap_or(0));
                let body = input.bytes(len).to_vec();
                let path = ["/v1/match/end", "/v1/ready", "/v1/heartbeat"]
                    [usize::from(input.byte().unwrap_or(0) % 3)];
                post(&state, path, body).await;
            }
            1 => {
                // A match end with a number of seconds from arbitrary bits (NaN, ∞, 1e19, ...).
                let seconds = f64::from_bits(input.u64());
                let body = format!(r#"{{"delay": {}}}"#, json!(seconds));
                post(&state, "/v1/match/end", body.into_bytes()).await;
            }
            2 => {
                // A match end with a delay written as text.
                let len = usize::from(input.byte().unwrap_or(0) % 32);
                let text = String::from_utf8_lossy(input.bytes(len)).into_owned();
                let body = json!({"delay": text}).to_string();
                post(&state, "/v1/match/end", body.into_bytes()).await;
            }
            3 => {
                let id = format!("p{}", input.byte().unwrap_or(0) % 4);
                let path = if input.byte().unwrap_or(0) & 1 == 0 {
                    "/v1/players/connect"
                } else {
                    "/v1/players/disconnect"
                };
                post(&state, path, json!({ "id": id }).to_string().into_bytes()).await;
            }
            4 => {
                let advance = input.any_duration().min(MAX_ADVANCE);
                tokio::time::advance(advance).await;
            }
            5 => {
                let signal = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGUSR1]
                    [usize::from(input.byte().unwrap_or(0) % 4)];
                driver.feed(Event::Signal(signal), &status_tx);
            }
            6 if driver.child_alive => {
                driver.child_alive = false;
                let code = i32::from(input.byte().unwrap_or(0));
                let exited = Event::ChildExited {
                    outcome: ChildOutcome::Exited(code),
                    group_left: false,
                };
                driver.feed(exited, &status_tx);
            }
            7 if driver.spawn_pending => {
                // The driver empties the roster before a restart.
                driver.spawn_pending = false;
                roster.clear();
                driver.child_alive = true;
                driver.feed(Event::ChildStarted, &status_tx);
            }
            8 if driver.self_stop_pending => {
                driver.self_stop_pending = false;
                let answer = if input.byte().unwrap_or(0) & 1 == 0 {
                    Event::SelfStopAccepted
                } else {
                    Event::SelfStopFailed("gave up".into())
                };
                driver.feed(answer, &status_tx);
            }
            _ => {}
        }
        while let Ok(request) = requests.try_recv() {
            let event = event_for_request(request, &roster);
            driver.feed(event, &status_tx);
        }
        driver.fire_due(&status_tx).await;
        if !driver.exited {
            assert_eq!(
                driver.machine.players(),
                roster.len(),
                "the machine's players are not the roster's"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(run(data));
});
