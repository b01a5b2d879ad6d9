//! Private fleets: named local hosts (`--private-host FLEET/HOST:CPU_UNITS:MEMORY_MB`) whose
//! capacity deployments consume while they live and release when they end.
//! `POST /v2/private-fleets:deploy` places a deployment on the first listed host with room
//! (and overflows to the local cloud location when none has); `GET
//! /v2/private-fleets/{fleet}/hosts` lists a fleet's hosts with what is allocated now. The
//! local cloud location's capacity is this machine's (CPUs × 1024 units, `MemTotal`), used by
//! `GET /v1/locations?app=&version=`.

use std::time::SystemTime;

use axum::extract::{Path, State};
use edgegap_contract::Location;
use serde_json::{json, Value};

use super::clock;
use super::http::{ok, Answer, ApiError, Emu};
use super::store::Store;
use super::validate::VersionSpec;

/// One private host.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivateHost {
    pub fleet: String,
    pub host_id: String,
    pub allocatable_cpu_units: i64,
    pub allocatable_memory_mb: i64,
    pub allocated_cpu_units: i64,
    pub allocated_memory_mb: i64,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// Parses `FLEET/HOST:CPU_UNITS:MEMORY_MB`, e.g. `test-fleet/alpha-1:4096:8192`.
pub fn parse_host(text: &str) -> Result<PrivateHost, String> {
    let usage = || {
        format!("expected FLEET/HOST:CPU_UNITS:MEMORY_MB (e.g. test-fleet/alpha-1:4096:8192), got {text:?}")
    };
    let (fleet, rest) = text.split_once('/').ok_or_else(usage)?;
    let mut parts = rest.split(':');
    let (Some(host), Some(cpu), Some(memory), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(usage());
    };
    let number = |n: &str| n.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(usage);
    if fleet.is_empty() || host.is_empty() {
        return Err(usage());
    }
    let now = SystemTime::now();
    Ok(PrivateHost {
        fleet: fleet.to_owned(),
        host_id: host.to_owned(),
        allocatable_cpu_units: number(cpu)?,
        allocatable_memory_mb: number(memory)?,
        allocated_cpu_units: 0,
        allocated_memory_mb: 0,
        created_at: now,
        updated_at: now,
    })
}

/// Where a private host is: this machine, named after its fleet.
fn host_location(host: &PrivateHost) -> Location {
    Location {
        city: Some(host.host_id.clone()),
        country: Some("Local".to_owned()),
        continent: Some("Local".to_owned()),
        administrative_division: Some(host.fleet.clone()),
        timezone: Some("UTC".to_owned()),
        latitude: Some(0.0),
        longitude: Some(0.0),
    }
}

/// A deployment placed on a private host.
pub struct Placed {
    pub host_id: String,
    pub location: Location,
}

/// Takes room on the first of `host_ids` that has it; `None` (the cloud) when none has, or
/// when no host was asked for. An unknown host id is an error.
pub fn place(
    store: &mut Store,
    host_ids: &[String],
    spec: &VersionSpec,
) -> Result<Option<Placed>, String> {
    for (i, id) in host_ids.iter().enumerate() {
        if !store.hosts.contains_key(id) {
            return Err(format!("private_host_ids[{i}]: no private host {id:?}"));
        }
    }
    for id in host_ids {
        let Some(host) = store.hosts.get_mut(id) else {
            continue;
        };
        let cpu_left = host.allocatable_cpu_units - host.allocated_cpu_units;
        let memory_left = host.allocatable_memory_mb - host.allocated_memory_mb;
        if spec.req_cpu <= cpu_left && spec.req_memory <= memory_left {
            host.allocated_cpu_units += spec.req_cpu;
            host.allocated_memory_mb += spec.req_memory;
            host.updated_at = SystemTime::now();
            return Ok(Some(Placed {
                host_id: id.clone(),
                location: host_location(host),
            }));
        }
    }
    Ok(None)
}

/// Gives a finished deployment's room (`(host, cpu units, memory MB)`) back to its host.
pub fn release(store: &mut Store, (host_id, cpu, memory): (Option<String>, i64, i64)) {
    let Some(host) = host_id.and_then(|id| store.hosts.get_mut(&id)) else {
        return;
    };
    host.allocated_cpu_units -= cpu;
    host.allocated_memory_mb -= memory;
    host.updated_at = SystemTime::now();
}

/// This machine's capacity: CPU units (1024 per CPU) and memory in MB.
fn machine_capacity() -> (i64, i64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(i64::MAX, |kb| kb / 1024);
    (i64::try_from(cpus).unwrap_or(1) * 1024, memory_mb)
}

/// Whether `spec` fits in what the live cloud deployments leave of this machine.
pub fn cloud_fits(store: &Store, spec: &VersionSpec) -> bool {
    let (cpu, memory) = machine_capacity();
    let live = store
        .deployments
        .values()
        .filter(|d| d.host_id.is_none() && !d.status.is_final());
    let (used_cpu, used_memory) = live.fold((0, 0), |(c, m), d| {
        (c + d.spec.req_cpu, m + d.spec.req_memory)
    });
    spec.req_cpu <= cpu - used_cpu && spec.req_memory <= memory - used_memory
}

/// This machine's CPU clock in GHz (`cpu MHz` of `/proc/cpuinfo`), 0 when unknown.
fn clock_speed_ghz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(0.0, |mhz| (mhz / 10.0).round() / 100.0)
}

fn host_json(host: &PrivateHost) -> Value {
    let location = host_location(host);
    json!({
        "host_id": host.host_id,
        "status": "ACTIVE",
        "ip_address": "127.0.0.1",
        "latitude": location.latitude,
        "longitude": location.longitude,
        "city": location.city,
        "country": location.country,
        "continent": location.continent,
        "allocated_cpu_units": host.allocated_cpu_units,
        "allocated_memory_mb": host.allocated_memory_mb,
        "allocatable_cpu_units": host.allocatable_cpu_units,
        "allocatable_memory_mb": host.allocatable_memory_mb,
        "beacon": null,
        "created_at": clock::iso(host.created_at),
        "updated_at": clock::iso(host.updated_at),
        "pin": {
            "label": host.fleet,
            "latitude": 0.0,
            "longitude": 0.0,
            "radius_km": 0,
            "radius_strategy": 0,
            "cpu_cores": host.allocatable_cpu_units / 1024,
            "memory_gb": host.allocatable_memory_mb / 1024,
            "clock_speed_ghz": clock_speed_ghz(),
            "desired_host_count": 1,
        },
        "delete_schedules": [],
    })
}

pub async fn hosts(State(emulator): Emu, Path(fleet): Path<String>) -> Answer {
    let store = emulator.lock();
    let hosts: Vec<Value> = store
        .hosts
        .values()
        .filter(|h| h.fleet == fleet)
        .map(host_json)
        .collect();
    if hosts.is_empty() {
        return Err(ApiError::bad_request(format!(
            "no private fleet {fleet:?} (start the emulator with --private-host {fleet}/HOST:CPU_UNITS:MEMORY_MB)"
        )));
    }
    ok(json!({"data": hosts}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        let host = parse_host("test-fleet/alpha-1:4096:8192").unwrap();
        assert_eq!(
            (host.fleet.as_str(), host.host_id.as_str()),
            ("test-fleet", "alpha-1")
        );
        assert_eq!(
            (host.allocatable_cpu_units, host.allocatable_memory_mb),
            (4096, 8192)
        );
        for bad in ["alpha:1:2", "f/h:0:2", "f/h:1", "f/h:1:2:3", "/h:1:2"] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }
}
