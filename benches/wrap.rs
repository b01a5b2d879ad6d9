//! Wrap-mode benchmark: the agent against Debian's `tini` and `dumb-init`, in one run.
//!
//! Measures per-run overhead of `X -- /bin/true`, signal forwarding latency, SIGTERM → exit,
//! idle RSS and CPU, and binary size, and prints a Markdown table (benches/run.sh puts it in
//! the README). Every figure is measured in the same run for every wrapper, runs interleaved,
//! so the machine's speed and load cancel out of the comparisons.
//! `BENCH_RUNS` (default 300) and `IDLE_SECONDS` (default 60) bound it.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The agent as it ships (the dist profile), which `benches/run.sh` builds alone and names in
/// `SHIPPED_AGENT`; the bench profile's own build when run by hand without it.
fn agent() -> &'static str {
    static AGENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        std::env::var("SHIPPED_AGENT")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_edgegap-agent").to_owned())
    })
}
const FAKE_GAME: &str = env!("CARGO_BIN_EXE_fake-game");
const TINI: &str = "/usr/bin/tini";
const TINI_STATIC: &str = "/usr/bin/tini-static";
const DUMB_INIT: &str = "/usr/bin/dumb-init";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The wrappers, each as the argv prefix that goes before the wrapped command. The agent's
/// API listens on a free port (several run at once here) and it logs warnings only, as the
/// others print nothing.
fn wrappers() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("direct", vec![]),
        (
            "edgegap-agent",
            vec![
                agent(),
                "--api-addr",
                "127.0.0.1:0",
                "--log-level",
                "warn",
                "--on-exit",
                "*=exit",
                "--",
            ],
        ),
        ("tini", vec![TINI, "-s", "--"]),
        ("dumb-init", vec![DUMB_INIT, "--"]),
    ]
}

/// Median wall time of one `prefix /bin/true`, per wrapper.
fn spawn_overhead(runs: u64) -> Vec<Duration> {
    let wrappers = wrappers();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); wrappers.len()];
    for _ in 0..runs {
        for (i, (_, prefix)) in wrappers.iter().enumerate() {
            let mut argv = prefix.clone();
            argv.push("/bin/true");
            let started = Instant::now();
            let status = Command::new(argv[0])
                .args(&argv[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run");
            samples[i].push(started.elapsed());
            assert!(status.success(), "{argv:?} failed: {status}");
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort();
            percentile(&s, 0.5)
        })
        .collect()
}

/// A wrapper running the fake game, which prints each signal it gets.
struct Wrapped {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Who gets the signals: the wrapper, or the game itself when run directly.
    target: Pid,
}

fn start_wrapped(prefix: &[&str]) -> Wrapped {
    let mut argv: Vec<&str> = prefix.to_vec();
    argv.extend([FAKE_GAME, "--record-signals", "-", "--on-term-exit", "0"]);
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().expect("READY line").expect("read");
    let game: i32 = ready.trim_start_matches("READY pid=").parse().expect("pid");
    let target = if prefix.is_empty() {
        game
    } else {
        child.id() as i32
    };
    Wrapped {
        child,
        lines,
        target: Pid::from_raw(target),
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of every thread, in clock ticks, and context switches of every thread.
fn cpu_and_switches(pid: u32) -> (u64, u64) {
    let mut ticks = 0;
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = task.path();
        if let Ok(stat) = std::fs::read_to_string(path.join("stat")) {
            let rest = stat.rsplit(')').next().unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After the command: state is field 3; utime and stime are fields 14 and 15.
            ticks += fields
                .get(11)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            ticks += fields
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(status) = std::fs::read_to_string(path.join("status")) {
            for line in status.lines().filter(|l| l.contains("ctxt_switches")) {
                switches += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    (ticks, switches)
}

struct SignalFigures {
    median: Duration,
    p99: Duration,
    peak_rss_kib: u64,
}

/// Time from `kill(wrapper, SIGUSR1)` until the game prints that it received it.
fn signal_latency(wrapped: &mut Wrapped, runs: u64) -> SignalFigures {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        kill(wrapped.target, Signal::SIGUSR1).expect("kill");
        let line = wrapped.lines.next().expect("signal line").expect("read");
        samples.push(started.elapsed());
        assert_eq!(line, "SIGUSR1");
    }
    samples.sort();
    SignalFigures {
        median: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        peak_rss_kib: proc_status_kib(wrapped.child.id(), "VmHWM:"),
    }
}

/// Time from SIGTERM to the wrapper's exit, for a game that exits at once on SIGTERM.
fn stop_latency(prefix: &[&str], runs: u64) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let mut wrapped = start_wrapped(prefix);
        let started = Instant::now();
        kill(wrapped.target, Signal::SIGTERM).expect("kill");
        wrapped.child.wait().expect("wait");
        samples.push(started.elapsed());
    }
    samples.sort();
    percentile(&samples, 0.5)
}

/// The shipped agent's size (see [`agent`]).
fn shipped_agent_size() -> u64 {
    size_of(agent())
}

fn size_of(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1048576.0)
}

fn main() {
    for tool in [TINI, TINI_STATIC, DUMB_INIT] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: apt-get install tini dumb-init"
        );
    }
    let runs = env_number("BENCH_RUNS", 300);
    let idle_seconds = env_number("IDLE_SECONDS", 60);
    let names: Vec<&str> = wrappers().iter().map(|(n, _)| *n).collect();

    let spawn = spawn_overhead(runs);
    let overhead: Vec<Duration> = spawn.iter().map(|d| d.saturating_sub(spawn[0])).collect();

    // Idle: all wrappers side by side, for the same seconds.
    let mut idle: Vec<Wrapped> = wrappers()
        .iter()
        .map(|(_, prefix)| start_wrapped(prefix))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let before: Vec<(u64, u64)> = idle
        .iter()
        .map(|w| cpu_and_switches(w.child.id()))
        .collect();
    std::thread::sleep(Duration::from_secs(idle_seconds));
    let after: Vec<(u64, u64)> = idle
        .iter()
        .map(|w| cpu_and_switches(w.child.id()))
        .collect();
    let idle_rss: Vec<u64> = idle
        .iter()
        .map(|w| proc_status_kib(w.child.id(), "VmRSS:"))
        .collect();

    let signals: Vec<SignalFigures> = idle.iter_mut().map(|w| signal_latency(w, runs)).collect();
    for mut wrapped in idle {
        let _ = kill(wrapped.target, Signal::SIGTERM);
        let _ = wrapped.child.wait();
    }
    let stop: Vec<Duration> = wrappers()
        .iter()
        .map(|(_, prefix)| stop_latency(prefix, runs.min(100)))
        .collect();

    let row = |label: &str, cells: Vec<String>, target: &str| {
        println!("| {label} | {} | {target} |", cells.join(" | "));
    };
    println!(
        "| measure ({runs} runs each; idle {idle_seconds} s) | {} | target |",
        names.join(" | ")
    );
    println!("|---|{}---|", "---|".repeat(names.len()));
    row(
        "`X -- /bin/true`, median",
        spawn.iter().map(|d| format!("{:.0} µs", us(*d))).collect(),
        "",
    );
    row(
        "spawn overhead over direct",
        overhead
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if i == 0 {
                    String::new()
                } else {
                    format!("{:.0} µs", us(*d))
                }
            })
            .collect(),
        &format!(
            "agent ≤ 1.2× tini: **{:.2}×**",
            overhead[1].as_secs_f64() / overhead[2].as_secs_f64().max(1e-9)
        ),
    );
    row(
        "SIGUSR1 → game, median",
        signals
            .iter()
            .map(|s| format!("{:.0} µs", us(s.median)))
            .collect(),
        &format!(
            "agent ≤ tini + 50 µs: **{:+.0} µs**",
            us(signals[1].median) - us(signals[2].median)
        ),
    );
    row(
        "SIGUSR1 → game, p99",
        signals
            .iter()
            .map(|s| format!("{:.0} µs", us(s.p99)))
            .collect(),
        &format!("**{:+.0} µs**", us(signals[1].p99) - us(signals[2].p99)),
    );
    row(
        "SIGTERM → wrapper exit (game exits at once), median",
        stop.iter().map(|d| format!("{:.0} µs", us(*d))).collect(),
        "",
    );
    row(
        "idle RSS (VmRSS) of the wrapper",
        idle_rss
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if i == 0 {
                    String::new()
                } else {
                    format!("{r} KiB")
                }
            })
            .collect(),
        &format!("agent ≤ 3 MiB: **{} KiB**", idle_rss[1]),
    );
    row(
        "peak RSS (VmHWM) after the signal runs",
        signals
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == 0 {
                    String::new()
                } else {
                    format!("{} KiB", s.peak_rss_kib)
                }
            })
            .collect(),
        "",
    );
    row(
        &format!("idle CPU ticks / context switches over {idle_seconds} s"),
        before
            .iter()
            .zip(&after)
            .enumerate()
            .map(|(i, (b, a))| {
                if i == 0 {
                    String::new()
                } else {
                    format!("{} / {}", a.0 - b.0, a.1 - b.1)
                }
            })
            .collect(),
        "no periodic wakeups",
    );
    row(
        "binary size",
        vec![
            String::new(),
            format!("{} (static)", mib(shipped_agent_size())),
            format!(
                "{} (static); {} dynamic",
                mib(size_of(TINI_STATIC)),
                mib(size_of(TINI))
            ),
            format!(
                "{} (dynamic: Debian ships no static build)",
                mib(size_of(DUMB_INIT))
            ),
        ],
        "agent ≤ 4 MiB",
    );
}
