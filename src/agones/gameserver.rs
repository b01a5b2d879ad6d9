//! The `GameServer` object the SDK's `GET /gameserver` and `GET /watch/gameserver` serve,
//! built from the deployment (`ApiState::deployment`), the agent's published status, the
//! roster and the SDK state, in the shape of Agones's `sdk.GameServer` as its REST gateway
//! writes it: proto field names, every field present, int64 values as JSON strings.
//!
//! **State mapping** (Agones state ← the agent's status):
//! - `Scheduled` ← `starting` before the game called `/ready` (or `POST /v1/ready`);
//! - `Ready` ← ready and running (or starting once ready);
//! - `Reserved` ← ready, after `/reserve`, until its seconds pass (0: until allocated, made
//!   ready again or shut down);
//! - `Allocated` ← ready, after `/allocate`;
//! - `Unhealthy` ← `restarting` (the game exited and is started again in place);
//! - `Shutdown` ← `ending`, `stopping`, `exited`, or once `/shutdown` was called.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::sdk::Sdk;
use crate::lifecycle::{AgentStatus, Lifecycle};

/// The Agones state name for the agent's status and the SDK's marks at `now`.
pub fn state_name(status: &AgentStatus, sdk: &Sdk, now: Instant) -> &'static str {
    if sdk.shutdown {
        return "Shutdown";
    }
    match status.lifecycle {
        Lifecycle::Ending { .. } | Lifecycle::Stopping { .. } | Lifecycle::Exited { .. } => {
            "Shutdown"
        }
        Lifecycle::Restarting => "Unhealthy",
        Lifecycle::Starting | Lifecycle::Running if !status.ready => "Scheduled",
        Lifecycle::Starting | Lifecycle::Running => {
            if sdk.allocated {
                "Allocated"
            } else if sdk.is_reserved(now) {
                "Reserved"
            } else {
                "Ready"
            }
        }
    }
}

/// What the GameServer is made of, gathered under the locks by the caller.
pub struct Parts<'a> {
    pub status: &'a AgentStatus,
    pub sdk: &'a Sdk,
    pub deployment: &'a Value,
    pub players: &'a BTreeSet<String>,
    /// The agent's start, seconds since the Unix epoch (`creation_timestamp`).
    pub created_unix: u64,
}

/// The GameServer as JSON.
pub fn game_server(parts: &Parts<'_>, now: Instant) -> Value {
    let deployment = parts.deployment;
    let text = |key: &str| deployment.get(key).and_then(Value::as_str).unwrap_or("");
    let address = text("public_ip");
    let ports: Vec<Value> = deployment
        .get("ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|port| {
                    json!({
                        "name": port.get("name").and_then(Value::as_str).unwrap_or(""),
                        "port": port.get("external").and_then(Value::as_u64).unwrap_or(0),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let addresses: Vec<Value> = if address.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "ExternalIP", "address": address})]
    };
    let counters: Map<String, Value> = parts
        .sdk
        .counters
        .iter()
        .map(|(name, c)| {
            let counter = json!({"count": c.count.to_string(), "capacity": c.capacity.to_string()});
            (name.clone(), counter)
        })
        .collect();
    let lists: Map<String, Value> = parts
        .sdk
        .lists
        .iter()
        .map(|(name, l)| {
            let list = json!({"capacity": l.capacity.to_string(), "values": l.values});
            (name.clone(), list)
        })
        .collect();
    json!({
        "object_meta": {
            "name": text("request_id"),
            "namespace": "",
            "uid": text("request_id"),
            "resource_version": "",
            "generation": "0",
            "creation_timestamp": parts.created_unix.to_string(),
            "deletion_timestamp": "0",
            "annotations": parts.sdk.annotations,
            "labels": parts.sdk.labels,
        },
        "spec": {
            "health": {
                "disabled": false,
                "period_seconds": 0,
                "failure_threshold": 0,
                "initial_delay_seconds": 0,
            }
        },
        "status": {
            "state": state_name(parts.status, parts.sdk, now),
            "address": address,
            "addresses": addresses,
            "ports": ports,
            "players": {
                "count": parts.players.len().to_string(),
                "capacity": parts.sdk.player_capacity.to_string(),
                "ids": parts.players,
            },
            "counters": counters,
            "lists": lists,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agones::sdk::Reserve;

    #[test]
    fn states_follow_the_agent_and_the_sdk_marks() {
        let now = Instant::now();
        let mut status = AgentStatus::starting();
        let mut sdk = Sdk::default();
        assert_eq!(state_name(&status, &sdk, now), "Scheduled");
        status.lifecycle = Lifecycle::Running;
        status.ready = true;
        assert_eq!(state_name(&status, &sdk, now), "Ready");
        sdk.reserved = Some(Reserve::Until(now + std::time::Duration::from_secs(5)));
        assert_eq!(state_name(&status, &sdk, now), "Reserved");
        assert_eq!(
            state_name(&status, &sdk, now + std::time::Duration::from_secs(5)),
            "Ready"
        );
        sdk.allocated = true;
        assert_eq!(state_name(&status, &sdk, now), "Allocated");
        status.lifecycle = Lifecycle::Restarting;
        assert_eq!(state_name(&status, &sdk, now), "Unhealthy");
        status.lifecycle = Lifecycle::Ending {
            trigger: "api".into(),
            reason: "x".into(),
        };
        assert_eq!(state_name(&status, &sdk, now), "Shutdown");
    }

    #[test]
    fn the_game_server_carries_the_deployment_with_int64_as_strings() {
        let mut status = AgentStatus::starting();
        status.ready = true;
        let sdk = Sdk {
            player_capacity: 8,
            ..Sdk::default()
        };
        let deployment = json!({"request_id": "abc123", "public_ip": "1.2.3.4",
            "ports": [{"name": "game", "internal": 7777, "external": 31000, "protocol": "UDP"}]});
        let players: BTreeSet<String> = ["p1".to_owned()].into();
        let parts = Parts {
            status: &status,
            sdk: &sdk,
            deployment: &deployment,
            players: &players,
            created_unix: 5,
        };
        let gs = game_server(&parts, Instant::now());
        assert_eq!(gs["object_meta"]["name"], "abc123");
        assert_eq!(gs["object_meta"]["creation_timestamp"], "5");
        assert_eq!(gs["status"]["state"], "Ready");
        assert_eq!(gs["status"]["address"], "1.2.3.4");
        assert_eq!(
            gs["status"]["ports"],
            json!([{"name": "game", "port": 31000}])
        );
        assert_eq!(
            gs["status"]["players"],
            json!({"count": "1", "capacity": "8", "ids": ["p1"]})
        );
    }
}
