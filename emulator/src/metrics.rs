//! Deployment metrics, sampled from the real processes: every `--metrics-interval` (1 s by
//! default) the emulator reads `/proc` for the deployment's process tree (the process it
//! started and every descendant; under `--docker`, the container's init process and its
//! descendants): CPU time (`stat`), resident memory (`status`), disk bytes (`io`), and counts
//! the bytes through its forwarded ports (`forward.rs`: the deployment's network traffic, as
//! players see it). `GET /v1/metrics/deployment/{id}?start_time=&end_time=&steps=&raw=`
//! averages the samples per step (or gives each with `raw=true`) in the documented shape.
//!
//! Units: `cpu` in percent of one CPU, `mem` in MB, `network.receive`/`transmit` in bytes per
//! second (receive: players → game), the `total` series in bytes since the start.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::process::Command;

use super::deployments::no_deployment;
use super::http::{ok, query, Answer, ApiError, Emu};
use super::{clock, Emulator};

/// Linux reports `/proc/<pid>/stat` times in USER_HZ, 100 on every architecture it supports.
const TICKS_PER_SECOND: f64 = 100.0;
/// A day of samples at 1 s.
const MAX_SAMPLES: usize = 86_400;

/// One reading.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub at: Option<SystemTime>,
    pub cpu_percent: f64,
    pub mem_mb: f64,
    pub receive_total: u64,
    pub transmit_total: u64,
    pub disk_read_total: u64,
    pub disk_write_total: u64,
}

/// A deployment's samples, oldest first.
#[derive(Debug, Default)]
pub struct Series {
    pub samples: VecDeque<Sample>,
}

/// Totals over a process tree: CPU ticks, RSS in kB, disk bytes read and written.
#[derive(Default)]
struct Reading {
    ticks: u64,
    rss_kb: u64,
    read_bytes: u64,
    write_bytes: u64,
}

fn field_after_comm(stat: &str, index: usize) -> Option<u64> {
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(index)?
        .parse()
        .ok()
}

/// Every process in the tree rooted at `root` (itself included).
fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 4 of stat is the ppid: index 1 after the state.
            if let Some(ppid) = field_after_comm(&stat, 1) {
                children.entry(ppid as u32).or_default().push(pid);
            }
        }
    }
    let mut all = vec![root];
    let mut i = 0;
    while let Some(pid) = all.get(i).copied() {
        all.extend(children.get(&pid).into_iter().flatten());
        i += 1;
    }
    all
}

fn read_tree(root: u32) -> Reading {
    let mut reading = Reading::default();
    for pid in tree(root) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // utime, stime, cutime, cstime: fields 14..17, indexes 11..14 after the state.
        for index in 11..15 {
            reading.ticks += field_after_comm(&stat, index).unwrap_or(0);
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        reading.rss_kb += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        let value = |key: &str| {
            io.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        reading.read_bytes += value("read_bytes:");
        reading.write_bytes += value("write_bytes:");
    }
    reading
}

/// The host pid of a container's init process.
async fn container_pid(name: &str) -> Option<u32> {
    let output = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
}

/// Samples deployment `id` until it is over (one last sample then).
pub async fn sample(emulator: Arc<Emulator>, id: String) {
    let every = emulator.settings.metrics_interval;
    let mut last: Option<(std::time::Instant, u64)> = None;
    let mut container_root: Option<u32> = None;
    loop {
        tokio::time::sleep(every).await;
        let Some((pid, container, traffic, over)) = emulator.lock().deployments.get(&id).map(|d| {
            (
                d.pid,
                d.container.clone(),
                d.traffic.clone(),
                d.status.is_final(),
            )
        }) else {
            return;
        };
        let root = match &container {
            Some(name) => {
                if container_root.is_none() {
                    container_root = container_pid(name).await;
                }
                container_root
            }
            None => pid,
        };
        let reading = match root {
            Some(root) if !over => tokio::task::spawn_blocking(move || read_tree(root))
                .await
                .unwrap_or_default(),
            _ => Reading::default(),
        };
        let now = std::time::Instant::now();
        let cpu_percent = match last {
            Some((at, ticks)) if reading.ticks >= ticks => {
                let seconds = now.duration_since(at).as_secs_f64().max(1e-3);
                (reading.ticks - ticks) as f64 / TICKS_PER_SECOND / seconds * 100.0
            }
            _ => 0.0,
        };
        last = Some((now, reading.ticks));
        let (receive_total, transmit_total) = traffic.totals();
        let sample = Sample {
            at: Some(SystemTime::now()),
            cpu_percent,
            mem_mb: reading.rss_kb as f64 / 1024.0,
            receive_total,
            transmit_total,
            disk_read_total: reading.read_bytes,
            disk_write_total: reading.write_bytes,
        };
        let mut store = emulator.lock();
        let Some(d) = store.deployments.get_mut(&id) else {
            return;
        };
        d.metrics.samples.push_back(sample);
        while d.metrics.samples.len() > MAX_SAMPLES {
            d.metrics.samples.pop_front();
        }
        if over {
            return;
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct MetricsQuery {
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub steps: Option<String>,
    pub raw: Option<String>,
}

/// One documented series: `{labels, datasets, timestamps}`.
#[derive(Default)]
struct Chart {
    labels: Vec<String>,
    datasets: Vec<String>,
    timestamps: Vec<String>,
}

impl Chart {
    fn push(&mut self, at: SystemTime, value: String) {
        self.labels.push(clock::time_of_day(at));
        self.datasets.push(value);
        self.timestamps.push(clock::platform_millis(at));
    }
    fn json(self) -> Value {
        json!({"labels": self.labels, "datasets": self.datasets, "timestamps": self.timestamps})
    }
}

fn decimal(value: f64) -> String {
    format!("{value:.2}")
}

pub async fn deployment(
    State(emulator): Emu,
    Path(id): Path<String>,
    q: Result<Query<MetricsQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let bad = |field: &str, e: String| ApiError::bad_request(format!("{field}: {e}"));
    let raw = match q.raw.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(bad("raw", format!("true or false, got {other:?}"))),
    };
    let store = emulator.lock();
    let d = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    let start = match &q.start_time {
        Some(text) => clock::parse_platform(text).map_err(|e| bad("start_time", e))?,
        None => d.start_time,
    };
    let end = match &q.end_time {
        Some(text) => clock::parse_platform(text).map_err(|e| bad("end_time", e))?,
        None => d.removal_time.unwrap_or_else(SystemTime::now),
    };
    let window = end
        .duration_since(start)
        .ok()
        .filter(|w| !w.is_zero())
        .ok_or_else(|| bad("end_time", "must be greater than start_time".to_owned()))?;
    let step = match &q.steps {
        Some(text) => humantime::parse_duration(text)
            .ok()
            .filter(|s| !s.is_zero())
            .ok_or_else(|| {
                bad(
                    "steps",
                    format!("a duration such as 30s, 1m, 5m, 1h, got {text:?}"),
                )
            })?,
        None => (window / 60).max(Duration::from_secs(1)),
    };
    let in_window: Vec<Sample> = d
        .metrics
        .samples
        .iter()
        .filter(|s| s.at.is_some_and(|at| at >= start && at <= end))
        .copied()
        .collect();
    // The rates' first point counts from the sample just before the window (or the start).
    let before = d
        .metrics
        .samples
        .iter()
        .rev()
        .find(|s| s.at.is_some_and(|at| at < start))
        .copied()
        .unwrap_or(Sample {
            at: Some(d.start_time),
            ..Sample::default()
        });
    drop(store);
    let groups: Vec<(SystemTime, Vec<Sample>)> = if raw {
        in_window
            .iter()
            .map(|s| (s.at.unwrap_or(start), vec![*s]))
            .collect()
    } else {
        let mut groups: Vec<(SystemTime, Vec<Sample>)> = Vec::new();
        for s in in_window {
            let offset =
                s.at.and_then(|at| at.duration_since(start).ok())
                    .unwrap_or_default();
            let bucket = (offset.as_nanos() / step.as_nanos().max(1)) as u32;
            let at = start + step * bucket;
            match groups.last_mut() {
                Some((last, members)) if *last == at => members.push(s),
                _ => groups.push((at, vec![s])),
            }
        }
        groups
    };
    let mut charts: [Chart; 8] = Default::default();
    let mut previous = before;
    for (at, members) in &groups {
        let n = members.len() as f64;
        let mean = |f: fn(&Sample) -> f64| members.iter().map(f).sum::<f64>() / n;
        let Some(last) = members.last().copied() else {
            continue;
        };
        let first = previous;
        let seconds = match (first.at, last.at) {
            (Some(a), Some(b)) => b.duration_since(a).map_or(0.0, |d| d.as_secs_f64()),
            _ => 0.0,
        };
        let rate = |a: u64, b: u64| {
            if seconds > 0.0 {
                (b.saturating_sub(a)) as f64 / seconds
            } else {
                0.0
            }
        };
        let values = [
            last.receive_total.to_string(),
            last.transmit_total.to_string(),
            last.disk_read_total.to_string(),
            last.disk_write_total.to_string(),
            decimal(mean(|s| s.cpu_percent)),
            decimal(mean(|s| s.mem_mb)),
            decimal(rate(first.receive_total, last.receive_total)),
            decimal(rate(first.transmit_total, last.transmit_total)),
        ];
        for (chart, value) in charts.iter_mut().zip(values) {
            chart.push(*at, value);
        }
        previous = last;
    }
    let [receive_total, transmit_total, disk_read_total, disk_write_total, cpu, mem, receive, transmit] =
        charts;
    ok(json!({
        "total": {
            "receive_total": receive_total.json(),
            "transmit_total": transmit_total.json(),
            "disk_read_total": disk_read_total.json(),
            "disk_write_total": disk_write_total.json(),
        },
        "cpu": cpu.json(),
        "mem": mem.json(),
        "network": {"receive": receive.json(), "transmit": transmit.json()},
    }))
}
