//! The platform's injected `ARBITRIUM_*` environment, parsed once at start into typed values.
//!
//! [`PlatformEnv::from_iter`] is the seam: it takes `(name, value)` pairs, so tests and the
//! fuzzer never touch the process environment; [`PlatformEnv::from_env`] feeds it the real one.
//! Parsing never fails as a whole: every variable that is present but malformed becomes an
//! [`EnvProblem`] naming the variable, the value (secrets as `<redacted>`) and what was expected,
//! and the field stays unset. Availability of the match beats metadata, so the caller logs the
//! problems and goes on; only a feature that cannot work without a value (the `self-stop`
//! subcommand without a delete URL or token) turns a problem into a fatal error.
//!
//! Simple typed values go through `envy` (one variable at a time, so that *all* bad variables
//! are reported, not just the first); the JSON ones and the per-port variables are read with
//! the shapes and rules of `edgegap_contract` (shared with the emulator, which writes them) in
//! [`super::ports`] and here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use edgegap_contract::vars::{decode_tags, SECRETS};
use hyper::Uri;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::ports::{self, Port};
use super::secret::{Secret, REDACTED};

// The names, the value formats and the location document are the contract's (shared with
// the emulator, which writes them); this module reads them into typed values.
pub use edgegap_contract::vars::{
    BEACON_ENABLED, BEACON_PORT_TCP_EXTERNAL, BEACON_PORT_UDP_EXTERNAL, BEACON_PUBLIC_IP,
    CONTEXT_TOKEN, CONTEXT_URL, DELETE_TOKEN, DELETE_URL, DEPLOYMENT_LOCATION, DEPLOYMENT_TAGS,
    HOST_BASE_CLOCK_FREQUENCY, HOST_ID, MEMORY_MB, PORTS_MAPPING, PREFIX, PUBLIC_IP, REQUEST_ID,
    VCPU_UNITS,
};
pub use edgegap_contract::Location;

/// The platform's tokens: never shown, not even in a problem report, and by default kept
/// from the processes the agent starts.
pub const TOKEN_VARIABLES: [&str; 2] = SECRETS;

/// Longest value a problem report quotes; longer ones are cut (values may be 4 KB of JSON).
const MAX_QUOTED: usize = 160;

/// The platform's environment, typed. A field is `None` (or empty) when its variable is
/// absent or was malformed; [`PlatformEnv::from_iter`] says which.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformEnv {
    /// False when no `ARBITRIUM_*` variable exists: the agent runs outside Edgegap.
    pub on_edgegap: bool,
    pub request_id: Option<String>,
    pub host_id: Option<String>,
    pub public_ip: Option<IpAddr>,
    /// Named ports, from `ARBITRIUM_PORTS_MAPPING` cross-checked with the per-port variables.
    pub ports: BTreeMap<String, Port>,
    pub location: Option<Location>,
    pub tags: Vec<String>,
    pub vcpu_units: Option<u32>,
    pub memory_mb: Option<u64>,
    pub host_base_clock_frequency: Option<u64>,
    pub delete_url: Option<Uri>,
    pub delete_token: Option<Secret>,
    pub context_url: Option<Uri>,
    pub context_token: Option<Secret>,
    pub beacon_enabled: Option<bool>,
    pub beacon_public_ip: Option<IpAddr>,
    pub beacon_port_udp_external: Option<u16>,
    pub beacon_port_tcp_external: Option<u16>,
}

/// One variable that is present but malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The full variable name, e.g. `ARBITRIUM_DEPLOYMENT_VCPU_UNITS`.
    pub variable: String,
    /// The value as given, quoted and cut to a readable length; `<redacted>` for secrets.
    pub value: String,
    /// What was expected, and what was wrong, in words.
    pub expected: String,
}

impl EnvProblem {
    pub(super) fn new(variable: &str, value: &str, expected: impl Into<String>) -> Self {
        EnvProblem {
            variable: variable.to_owned(),
            value: quote(variable, value),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={}: expected {}",
            self.variable, self.value, self.expected
        )
    }
}

fn quote(variable: &str, value: &str) -> String {
    if TOKEN_VARIABLES.contains(&variable) {
        return REDACTED.to_owned();
    }
    if value.chars().count() <= MAX_QUOTED {
        return format!("{value:?}");
    }
    let cut: String = value.chars().take(MAX_QUOTED).collect();
    format!("{cut:?}... ({} bytes)", value.len())
}

impl PlatformEnv {
    /// Reads the process environment (names and values converted lossily to UTF-8).
    pub fn from_env() -> (PlatformEnv, Vec<EnvProblem>) {
        // Only the platform's variables are copied (the agent starts the game right after:
        // every copy of the whole environment is start-up time).
        let platform_vars = std::env::vars_os()
            .filter(|(name, _)| name.as_encoded_bytes().starts_with(PREFIX.as_bytes()));
        PlatformEnv::from_iter(platform_vars.map(|(name, value)| {
            (
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        }))
    }

    /// Parses `(name, value)` pairs; variables not starting with `ARBITRIUM_` are ignored, and
    /// so are `ARBITRIUM_*` variables this version does not know. When a name repeats, the
    /// last value wins, as in a process environment.
    // Named after envy's `from_iter` seam; it returns problems too, so it is no `FromIterator`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I, K, V>(pairs: I) -> (PlatformEnv, Vec<EnvProblem>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: BTreeMap<String, String> = pairs
            .into_iter()
            .filter(|(name, _)| name.as_ref().starts_with(PREFIX))
            .map(|(name, value)| (name.as_ref().to_owned(), value.as_ref().to_owned()))
            .collect();
        let mut p = Parser {
            vars: &vars,
            problems: Vec::new(),
        };
        let env = PlatformEnv {
            on_edgegap: !vars.is_empty(),
            request_id: p.text(REQUEST_ID),
            host_id: p.text(HOST_ID),
            public_ip: p.typed(PUBLIC_IP, "an IP address such as 100.10.0.85"),
            ports: ports::parse(&vars, &mut p.problems),
            location: p.json(DEPLOYMENT_LOCATION, "a JSON object such as {\"city\":\"Montreal\",\"country\":\"Canada\",\"latitude\":45.5,...}"),
            tags: p.tags(DEPLOYMENT_TAGS),
            vcpu_units: p.typed(VCPU_UNITS, "a whole number of vCPU units (1024 = 1 vCPU)"),
            memory_mb: p.typed(MEMORY_MB, "a whole number of megabytes"),
            host_base_clock_frequency: p.typed(HOST_BASE_CLOCK_FREQUENCY, "a whole number"),
            delete_url: p.url(DELETE_URL),
            delete_token: p.secret(DELETE_TOKEN),
            context_url: p.url(CONTEXT_URL),
            context_token: p.secret(CONTEXT_TOKEN),
            beacon_enabled: p.typed(BEACON_ENABLED, "true or false"),
            beacon_public_ip: p.typed(BEACON_PUBLIC_IP, "an IP address"),
            beacon_port_udp_external: p.typed(BEACON_PORT_UDP_EXTERNAL, "a port number (0..=65535)"),
            beacon_port_tcp_external: p.typed(BEACON_PORT_TCP_EXTERNAL, "a port number (0..=65535)"),
        };
        (env, p.problems)
    }
}

/// One value deserialized by envy: `envy::from_iter([("value", text)])`.
#[derive(Deserialize)]
struct One<T> {
    value: T,
}

struct Parser<'a> {
    vars: &'a BTreeMap<String, String>,
    problems: Vec<EnvProblem>,
}

impl<'a> Parser<'a> {
    /// The raw value, or `None` (with a problem) when it is empty or blank.
    fn raw(&mut self, name: &str, expected: &str) -> Option<&'a str> {
        let vars: &'a BTreeMap<String, String> = self.vars;
        let value = vars.get(name)?;
        if value.trim().is_empty() {
            self.problems.push(EnvProblem::new(
                name,
                value,
                format!("{expected}, not an empty value"),
            ));
            return None;
        }
        Some(value.trim())
    }

    fn text(&mut self, name: &str) -> Option<String> {
        self.raw(name, "a non-empty identifier").map(str::to_owned)
    }

    fn typed<T: DeserializeOwned>(&mut self, name: &str, expected: &str) -> Option<T> {
        let value = self.raw(name, expected)?;
        match envy::from_iter::<_, One<T>>([("VALUE".to_owned(), value.to_owned())]) {
            Ok(one) => Some(one.value),
            Err(error) => {
                // envy adds "while parsing value '...' provided by VALUE": the value is
                // already quoted, and VALUE is our single-field wrapper, not a variable.
                let text = error.to_string();
                let detail = text
                    .split(" while parsing value")
                    .next()
                    .unwrap_or_default();
                self.problems.push(EnvProblem::new(
                    name,
                    value,
                    format!("{expected} ({detail})"),
                ));
                None
            }
        }
    }

    fn json<T: DeserializeOwned>(&mut self, name: &str, expected: &str) -> Option<T> {
        let value = self.raw(name, expected)?;
        match serde_json::from_str(value) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.problems.push(EnvProblem::new(
                    name,
                    value,
                    format!("{expected} ({error})"),
                ));
                None
            }
        }
    }

    fn url(&mut self, name: &str) -> Option<Uri> {
        let expected = "an http:// or https:// URL";
        let value = self.raw(name, expected)?;
        let problem = match value.parse::<Uri>() {
            Ok(url) => {
                let scheme = url.scheme_str().unwrap_or_default();
                let has_host = url.host().is_some_and(|h| !h.is_empty());
                let has_userinfo = url.authority().is_some_and(|a| a.as_str().contains('@'));
                if matches!(scheme, "http" | "https") && has_host && !has_userinfo {
                    return Some(url);
                }
                format!("{expected} with a host and no user:password@ (the scheme is {scheme:?})")
            }
            Err(error) => format!("{expected} ({error})"),
        };
        self.problems.push(EnvProblem::new(name, value, problem));
        None
    }

    fn secret(&mut self, name: &str) -> Option<Secret> {
        let value = self.raw(name, "a non-empty token")?;
        if value.chars().any(|c| c.is_control()) {
            self.problems.push(EnvProblem::new(
                name,
                value,
                "a token without control characters (it goes into an HTTP header)",
            ));
            return None;
        }
        Some(Secret::new(value))
    }

    /// A JSON array of strings, or comma-separated words (the encoding is unconfirmed: the
    /// contract reads both). An empty value means no tags.
    fn tags(&mut self, name: &str) -> Vec<String> {
        let Some(value) = self.vars.get(name) else {
            return Vec::new();
        };
        decode_tags(value).unwrap_or_else(|error| {
            let problem = format!("a JSON array of strings or comma-separated tags ({error})");
            self.problems
                .push(EnvProblem::new(name, value.trim(), problem));
            Vec::new()
        })
    }
}
