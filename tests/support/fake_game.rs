//! A scriptable fake game server for the black-box tests. Not shipped.
//!
//! Flags (all optional; the last matching behaviour wins in the order listed):
//!   --touch FILE           create FILE first (proves the game was started)
//!   --print-env VAR        print `ENV VAR=<value>` (or `ENV VAR unset`)
//!   --print-env-prefix P   print `ENV NAME=<value>` for every variable whose name starts
//!                          with P, then `ENV-END P`
//!   --record-signals FILE  append each received signal's name to FILE, one per line
//!                          (`-`: print it on stdout at once): TERM, INT, HUP, QUIT, USR1,
//!                          USR2 and WINCH; every other signal keeps its default action
//!   --record-all           record every signal 1-31 but KILL, STOP and CHLD (what the agent
//!                          forwards), instead of those seven
//!   --stoppable            with --record-all: TSTP, TTIN and TTOU are not recorded but
//!                          keep their default action, stopping the game
//!   --ignore-term          SIGTERM is recorded (if recording) and otherwise ignored
//!   --on-term-exit CODE    on SIGTERM, exit with CODE after --on-term-delay-ms (default 0)
//!   --grandchild           start a grandchild in the same process group that records
//!                          signals to FILE.grandchild (needs --record-signals)
//!   --grandchild-ignores-term  the grandchild ignores SIGTERM (it records it)
//!   --orphans N            orphan N grandchildren that each live --orphan-ms (default 50)
//!   --die-signal N         after READY, die of signal N
//!   --run-ms N             after READY, run N ms, then exit with --exit (default 0)
//!   --exit N               after READY (and --run-ms), exit with N; without --exit or
//!                          --run-ms the game runs until a signal ends it
//!   --label L              print `L-READY` instead of `READY`
//!   --say TEXT             print TEXT on stdout after READY (repeatable); READY and these
//!                          lines are printed whole before a SIGTERM can make the game exit
//!   --flood-stdout N       after READY (and --say), print N numbered 100-byte lines
//!                          (`flood 00000001 xxx...`) on stdout, then `FLOODED` on stderr
//!   --flood-stderr N       the same on stderr, then `FLOODED` on stdout
//!   --api-call M:PATH[:BODY]  after READY, call the agent's API at $EDGEGAP_AGENT_URL (with
//!                          $EDGEGAP_AGENT_API_TOKEN as bearer token when set) and print
//!                          `API M PATH -> STATUS BODY`; repeatable, in order
//!   --api-calls-after FILE make the --api-call calls only once FILE exists (so a test can
//!                          choose the moment)
//!   --listen-tcp-env VAR   after --listen-delay-ms (default 0), accept TCP connections on
//!                          127.0.0.1:$VAR (e.g. ARBITRIUM_PORT_GAME_INTERNAL) and print
//!                          `LISTENING <port>`
//! It prints `READY pid=<pid>` on stdout once set up.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{raise, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};

#[allow(dead_code)]
#[path = "http.rs"]
mod http;

/// What `--record-signals` records by default.
const RECORDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The job-control stops `--stoppable` leaves at their default action.
const JOB_CONTROL: [Signal; 3] = [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU];

#[derive(Default, Clone)]
struct Script {
    touch: Option<String>,
    print_env: Vec<String>,
    print_env_prefix: Vec<String>,
    record: Option<String>,
    record_all: bool,
    stoppable: bool,
    grandchild_ignores_term: bool,
    ignore_term: bool,
    on_term_exit: Option<i32>,
    on_term_delay_ms: u64,
    grandchild: bool,
    orphans: u32,
    orphan_ms: u64,
    die_signal: Option<i32>,
    run_ms: Option<u64>,
    exit: Option<i32>,
    label: Option<String>,
    say: Vec<String>,
    flood_stdout: u64,
    flood_stderr: u64,
    api_calls: Vec<String>,
    api_calls_after: Option<String>,
    listen_tcp_env: Option<String>,
    listen_delay_ms: u64,
}

fn parse() -> Script {
    let mut script = Script {
        orphan_ms: 50,
        ..Script::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--touch" => script.touch = Some(value()),
            "--print-env" => script.print_env.push(value()),
            "--print-env-prefix" => script.print_env_prefix.push(value()),
            "--record-signals" => script.record = Some(value()),
            "--record-all" => script.record_all = true,
            "--stoppable" => script.stoppable = true,
            "--grandchild-ignores-term" => script.grandchild_ignores_term = true,
            "--ignore-term" => script.ignore_term = true,
            "--on-term-exit" => script.on_term_exit = Some(value().parse().unwrap()),
            "--on-term-delay-ms" => script.on_term_delay_ms = value().parse().unwrap(),
            "--grandchild" => script.grandchild = true,
            "--orphans" => script.orphans = value().parse().unwrap(),
            "--orphan-ms" => script.orphan_ms = value().parse().unwrap(),
            "--die-signal" => script.die_signal = Some(value().parse().unwrap()),
            "--run-ms" => script.run_ms = Some(value().parse().unwrap()),
            "--exit" => script.exit = Some(value().parse().unwrap()),
            "--label" => script.label = Some(value()),
            "--say" => script.say.push(value()),
            "--flood-stdout" => script.flood_stdout = value().parse().unwrap(),
            "--flood-stderr" => script.flood_stderr = value().parse().unwrap(),
            "--api-call" => script.api_calls.push(value()),
            "--api-calls-after" => script.api_calls_after = Some(value()),
            "--listen-tcp-env" => script.listen_tcp_env = Some(value()),
            "--listen-delay-ms" => script.listen_delay_ms = value().parse().unwrap(),
            other => panic!("fake-game: unknown flag {other}"),
        }
    }
    script
}

fn record(path: &str, signal: Signal) {
    if path == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(format!("{}\n", signal.as_str()).as_bytes())
            .unwrap();
        out.flush().unwrap();
        return;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(format!("{}\n", signal.as_str()).as_bytes())
        .unwrap();
}

/// The signals the game takes (and records): the seven by default, or every one the agent
/// forwards with `--record-all` (less the job-control stops with `--stoppable`).
fn recorded_set(script: &Script) -> SigSet {
    let mut set = SigSet::empty();
    if !script.record_all {
        for signal in RECORDED {
            set.add(signal);
        }
        return set;
    }
    for signal in Signal::iterator() {
        let kept = [Signal::SIGKILL, Signal::SIGSTOP, Signal::SIGCHLD].contains(&signal)
            || (script.stoppable && JOB_CONTROL.contains(&signal));
        if !kept {
            set.add(signal);
        }
    }
    set
}

fn handle_signals(script: Script) {
    let set = recorded_set(&script);
    set.thread_block().unwrap();
    std::thread::spawn(move || loop {
        let signal = set.wait().unwrap();
        if let Some(path) = &script.record {
            record(path, signal);
        }
        if signal != Signal::SIGTERM || script.ignore_term {
            continue;
        }
        if let Some(code) = script.on_term_exit {
            std::thread::sleep(Duration::from_millis(script.on_term_delay_ms));
            println!("EXITING code={code}");
            std::process::exit(code);
        }
        // Default: die of SIGTERM, as an unprepared game would.
        let mut term = SigSet::empty();
        term.add(Signal::SIGTERM);
        term.thread_unblock().unwrap();
        raise(Signal::SIGTERM).unwrap();
    });
}

fn orphan(count: u32, lifetime: Duration) {
    // SAFETY: the forked children only sleep and _exit; no locks or allocations are needed.
    match unsafe { fork() }.unwrap() {
        ForkResult::Parent { child } => {
            waitpid(child, None).unwrap();
        }
        ForkResult::Child => {
            for _ in 0..count {
                // SAFETY: as above.
                if let ForkResult::Child = unsafe { fork() }.unwrap() {
                    std::thread::sleep(lifetime);
                    // SAFETY: _exit ends the process without running the parent's atexit state.
                    unsafe { nix::libc::_exit(0) };
                }
            }
            // SAFETY: as above.
            unsafe { nix::libc::_exit(0) };
        }
    }
}

/// `count` lines of exactly 100 bytes, numbered from 1; whether there were any.
fn flood(out: impl Write, count: u64) -> bool {
    if count == 0 {
        return false;
    }
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    for i in 1..=count {
        writeln!(out, "flood {i:08} {}", "x".repeat(84)).unwrap();
    }
    out.flush().unwrap();
    true
}

fn call_api(spec: &str) {
    let mut parts = spec.splitn(3, ':');
    let method = parts.next().unwrap();
    let path = parts.next().expect("--api-call needs METHOD:PATH");
    let body = parts.next().unwrap_or("");
    let url = std::env::var("EDGEGAP_AGENT_URL").expect("EDGEGAP_AGENT_URL is not set");
    let token = std::env::var("EDGEGAP_AGENT_API_TOKEN").ok();
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("Authorization", b)])
        .unwrap_or_default();
    let reply = http::call(http::addr_of(&url), method, path, &headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    println!(
        "API {method} {path} -> {} {}",
        reply.status,
        reply.body.trim()
    );
    std::io::stdout().flush().unwrap();
}

fn main() {
    let script = parse();
    if let Some(path) = &script.touch {
        std::fs::write(path, b"started\n").unwrap();
    }
    for var in &script.print_env {
        match std::env::var(var) {
            Ok(value) => println!("ENV {var}={value}"),
            Err(_) => println!("ENV {var} unset"),
        }
    }
    for prefix in &script.print_env_prefix {
        let mut vars: Vec<(String, String)> = std::env::vars()
            .filter(|(name, _)| name.starts_with(prefix.as_str()))
            .collect();
        vars.sort();
        for (name, value) in vars {
            println!("ENV {name}={value}");
        }
        println!("ENV-END {prefix}");
    }
    if script.record.is_some() || script.ignore_term || script.on_term_exit.is_some() {
        handle_signals(script.clone());
    }
    if script.grandchild {
        let path = format!(
            "{}.grandchild",
            script
                .record
                .as_deref()
                .expect("--grandchild needs --record-signals")
        );
        let exe = std::env::current_exe().unwrap();
        let mut grandchild = Command::new(exe);
        grandchild.args(["--record-signals", &path, "--label", "GRANDCHILD"]);
        if script.grandchild_ignores_term {
            grandchild.arg("--ignore-term");
        }
        // The grandchild lives in the game's process group until the group is signalled.
        #[allow(clippy::zombie_processes)]
        grandchild.spawn().unwrap();
    }
    if script.orphans > 0 {
        orphan(script.orphans, Duration::from_millis(script.orphan_ms));
        println!("ORPHANED {}", script.orphans);
    }
    if let Some(var) = script.listen_tcp_env.clone() {
        let delay = Duration::from_millis(script.listen_delay_ms);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let port: u16 = std::env::var(&var).unwrap().parse().unwrap();
            let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            println!("LISTENING {port}");
            std::io::stdout().flush().unwrap();
            for stream in listener.incoming() {
                drop(stream);
            }
        });
    }
    {
        // Under stdout's lock: the SIGTERM handler prints (and exits) under it too, so a stop
        // that comes while these are printed cannot cut the script short.
        let mut out = std::io::stdout().lock();
        match &script.label {
            Some(label) => writeln!(out, "{label}-READY pid={}", std::process::id()).unwrap(),
            None => writeln!(out, "READY pid={}", std::process::id()).unwrap(),
        }
        for line in &script.say {
            writeln!(out, "{line}").unwrap();
        }
        out.flush().unwrap();
    }
    if flood(std::io::stdout().lock(), script.flood_stdout) {
        eprintln!("FLOODED");
    }
    if flood(std::io::stderr().lock(), script.flood_stderr) {
        println!("FLOODED");
        std::io::stdout().flush().unwrap();
    }
    if let Some(path) = &script.api_calls_after {
        while !std::path::Path::new(path).exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for call in &script.api_calls {
        call_api(call);
    }

    if let Some(signal) = script.die_signal {
        let signal = Signal::try_from(signal).unwrap();
        let mut set = SigSet::empty();
        set.add(signal);
        set.thread_unblock().unwrap();
        raise(signal).unwrap();
    }
    if let Some(ms) = script.run_ms {
        std::thread::sleep(Duration::from_millis(ms));
        std::process::exit(script.exit.unwrap_or(0));
    }
    if let Some(code) = script.exit {
        std::process::exit(code);
    }
    loop {
        std::thread::park();
    }
}
