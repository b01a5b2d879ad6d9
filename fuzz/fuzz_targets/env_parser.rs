//! Arbitrary bytes as an environment for `PlatformEnv::from_iter`: it must never panic, and
//! what it produces (problems, the deployment view) must format and serialize.
//!
//! Each line is one variable. Its first byte picks a known `ARBITRIUM_*` name (so the fuzzer
//! reaches every parser quickly); a byte past the table means the rest of the line is
//! `NAME=VALUE` with `ARBITRIUM_` put in front of NAME.
#![no_main]

use edgegap_agent::platform::env::*;
use edgegap_agent::platform::Deployment;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    REQUEST_ID,
    HOST_ID,
    PUBLIC_IP,
    PORTS_MAPPING,
    DEPLOYMENT_LOCATION,
    DEPLOYMENT_TAGS,
    VCPU_UNITS,
    MEMORY_MB,
    HOST_BASE_CLOCK_FREQUENCY,
    DELETE_URL,
    DELETE_TOKEN,
    CONTEXT_URL,
    CONTEXT_TOKEN,
    BEACON_ENABLED,
    BEACON_PUBLIC_IP,
    BEACON_PORT_UDP_EXTERNAL,
    BEACON_PORT_TCP_EXTERNAL,
    "ARBITRIUM_PORT_GAMEPORT_INTERNAL",
    "ARBITRIUM_PORT_GAMEPORT_EXTERNAL",
    "ARBITRIUM_PORT_GAMEPORT_PROTOCOL",
];

fuzz_target!(|data: &[u8]| {
    let mut pairs = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let Some((selector, rest)) = line.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(rest).into_owned();
        match NAMES.get(usize::from(*selector)) {
            Some(name) => pairs.push(((*name).to_owned(), text)),
            None => {
                let (name, value) = text.split_once('=').unwrap_or((&text, ""));
                pairs.push((format!("ARBITRIUM_{name}"), value.to_owned()));
            }
        }
    }
    let (env, problems) = PlatformEnv::from_iter(pairs);
    for problem in &problems {
        let _ = problem.to_string();
    }
    let deployment = Deployment::from_env(&env);
    let _ = serde_json::to_string(&deployment);
    let _ = format!("{env:?}");
});
