//! Wrap-mode benchmark: the agent against tini (Debian's `tini`, `tini-static`) in one run.
//!
//! Measures per-run overhead of `X -- /bin/true`, signal forwarding latency, static binary
//! size and peak RSS, and prints a Markdown table (bench/run.sh puts it in the README).
//! Figures are ratios against baselines measured in the same run, so the machine's speed
//! cancels out. Run with `bench/run.sh` (or `cargo bench --bench wrap`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const AGENT: &str = env!("CARGO_BIN_EXE_edgegap-agent");
const FAKE_GAME: &str = env!("CARGO_BIN_EXE_fake-game");
const TINI: &str = "/usr/bin/tini";
const TINI_STATIC: &str = "/usr/bin/tini-static";

fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The wrappers, each as the argv prefix that goes before the wrapped command.
fn wrappers() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("direct", vec![]),
        ("edgegap-agent", vec![AGENT, "--"]),
        ("tini -s", vec![TINI, "-s", "--"]),
    ]
}

/// Median wall time of one `prefix /bin/true`, runs interleaved so drift hits all alike.
fn spawn_overhead() -> Vec<(&'static str, Duration)> {
    let wrappers = wrappers();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); wrappers.len()];
    for _ in 0..runs() {
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
    wrappers
        .iter()
        .zip(samples)
        .map(|((name, _), mut s)| {
            s.sort();
            (*name, percentile(&s, 0.5))
        })
        .collect()
}

struct SignalFigures {
    median: Duration,
    p99: Duration,
    peak_rss_kib: u64,
}

/// Time from `kill(wrapper, SIGUSR1)` until the game prints that it received it.
fn signal_latency(prefix: &[&str]) -> SignalFigures {
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
    let mut samples = Vec::new();
    for _ in 0..runs() {
        let started = Instant::now();
        kill(Pid::from_raw(target), Signal::SIGUSR1).expect("kill");
        let line = lines.next().expect("signal line").expect("read");
        samples.push(started.elapsed());
        assert_eq!(line, "SIGUSR1");
    }
    let peak_rss_kib = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    kill(Pid::from_raw(target), Signal::SIGTERM).expect("stop");
    child.wait().expect("wait");
    samples.sort();
    SignalFigures {
        median: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        peak_rss_kib,
    }
}

fn size_of(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; other harness flags are not used here.
    for tool in [TINI, TINI_STATIC] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: apt-get install tini"
        );
    }
    let overhead = spawn_overhead();
    let direct = overhead[0].1;
    let agent_overhead = overhead[1].1.saturating_sub(direct);
    let tini_overhead = overhead[2].1.saturating_sub(direct);

    let direct_signal = signal_latency(&[]);
    let agent_signal = signal_latency(&[AGENT, "--"]);
    let tini_signal = signal_latency(&[TINI, "-s", "--"]);

    let agent_size = size_of(AGENT);
    let tini_size = size_of(TINI_STATIC);

    println!(
        "| measure ({} runs each) | direct | edgegap-agent | tini | agent vs tini | target |",
        runs()
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| `X -- /bin/true`, median wall time | {:.0} µs | {:.0} µs | {:.0} µs | | |",
        us(direct),
        us(overhead[1].1),
        us(overhead[2].1)
    );
    println!(
        "| overhead over direct | | {:.0} µs | {:.0} µs | {:.2}× | ≤ 1.2× |",
        us(agent_overhead),
        us(tini_overhead),
        agent_overhead.as_secs_f64() / tini_overhead.as_secs_f64().max(1e-9)
    );
    println!(
        "| SIGUSR1 → game, median | {:.0} µs | {:.0} µs | {:.0} µs | {:+.0} µs | |",
        us(direct_signal.median),
        us(agent_signal.median),
        us(tini_signal.median),
        us(agent_signal.median) - us(tini_signal.median)
    );
    println!(
        "| SIGUSR1 → game, p99 | {:.0} µs | {:.0} µs | {:.0} µs | {:+.0} µs | |",
        us(direct_signal.p99),
        us(agent_signal.p99),
        us(tini_signal.p99),
        us(agent_signal.p99) - us(tini_signal.p99)
    );
    println!(
        "| peak RSS of the wrapper (VmHWM) | | {} KiB | {} KiB | {:.2}× | |",
        agent_signal.peak_rss_kib,
        tini_signal.peak_rss_kib,
        agent_signal.peak_rss_kib as f64 / tini_signal.peak_rss_kib.max(1) as f64
    );
    println!(
        "| static binary size | | {:.2} MiB | {:.2} MiB (tini-static) | {:.2}× | ≤ 3 MiB |",
        agent_size as f64 / 1048576.0,
        tini_size as f64 / 1048576.0,
        agent_size as f64 / tini_size.max(1) as f64
    );
}
