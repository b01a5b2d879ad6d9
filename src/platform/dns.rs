//! Name resolution for platform calls, by `hickory-resolver`: the agent is a static binary,
//! and static glibc cannot load the NSS modules `getaddrinfo` relies on (a `scratch` image has
//! none anyway), so names resolve without libc.
//!
//! [`Resolver`] owns where the configuration comes from ([`Source`]: `/etc/hosts` and
//! `/etc/resolv.conf` on a system, files of a test's own otherwise) and how long one lookup
//! may take. As glibc's `hosts: files dns`, a name the hosts file knows is answered from it
//! alone (hickory would also ask the name servers for the family the file lacks, and wait for
//! them). Otherwise hickory asks the `nameserver`s: in parallel, each answer matched to its
//! query, a truncated UDP answer retried over TCP, the `search`/`domain` list applied with
//! `ndots`, A and AAAA both. Both files are read at each lookup, which is rare (a handful of
//! platform calls per deployment): an edited file counts at once, and no resolver state
//! outlives the runtime that used it. IP-literal URLs never get here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::config::{LookupIpStrategy, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::system_conf::parse_resolv_conf;
use hickory_resolver::Hosts;

/// Where the resolver's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// A hosts(5) file; a missing one has no entry.
    pub hosts_file: PathBuf,
    /// A resolv.conf(5): `nameserver`, `search`/`domain`, `options ndots: timeout:
    /// attempts:`. Without it (or without a `nameserver` in it) only the hosts file answers.
    pub resolv_conf: PathBuf,
    /// The port the `nameserver`s are asked on: 53 on a system, a fake server's in tests
    /// (resolv.conf has no syntax for a port).
    pub nameserver_port: u16,
}

impl Source {
    /// `/etc/hosts` and `/etc/resolv.conf`, name servers on port 53.
    pub fn system() -> Self {
        Source {
            hosts_file: PathBuf::from("/etc/hosts"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            nameserver_port: 53,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resolver {
    source: Source,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("{name}: no address found (asked {asked}): {detail}")]
    NotFound {
        name: String,
        asked: String,
        detail: String,
    },
    #[error("{name}: no answer within {within_ms} ms (asked {asked})")]
    Timeout {
        name: String,
        asked: String,
        within_ms: u128,
    },
}

type HickoryResolver = hickory_resolver::Resolver<TokioRuntimeProvider>;

impl Resolver {
    pub fn system() -> Self {
        Resolver::new(Source::system())
    }

    pub fn new(source: Source) -> Self {
        Resolver { source }
    }

    /// Every address of `name`, IPv4 first, within `within` (the caller's share of its
    /// attempt): a lookup that takes longer is abandoned.
    pub async fn lookup(&self, name: &str, within: Duration) -> Result<Vec<IpAddr>, DnsError> {
        let from_hosts = from_hosts_file(&self.source.hosts_file, name);
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        let (resolver, asked) = self.name_servers(within);
        let not_found = |detail: String| DnsError::NotFound {
            name: name.to_owned(),
            asked: asked.clone(),
            detail,
        };
        let resolver = resolver.map_err(not_found)?;
        match tokio::time::timeout(within, resolver.lookup_ip(name)).await {
            Err(_) => Err(DnsError::Timeout {
                name: name.to_owned(),
                asked: asked.clone(),
                within_ms: within.as_millis(),
            }),
            Ok(Err(error)) => Err(not_found(error.to_string())),
            Ok(Ok(found)) => match found.iter().collect::<Vec<IpAddr>>() {
                addresses if addresses.is_empty() => {
                    Err(not_found("no A or AAAA record".to_owned()))
                }
                addresses => Ok(addresses),
            },
        }
    }

    /// A hickory resolver of the name servers for one lookup (or why there is none), and
    /// what it asks, for errors.
    fn name_servers(&self, within: Duration) -> (Result<HickoryResolver, String>, String) {
        let Source {
            hosts_file,
            resolv_conf,
            nameserver_port,
        } = &self.source;
        let read = std::fs::read(resolv_conf)
            .map_err(|e| e.to_string())
            .and_then(|text| parse_resolv_conf(text).map_err(|e| e.to_string()));
        let (mut config, mut options): (ResolverConfig, ResolverOpts) = match read {
            Ok(parsed) => parsed,
            Err(error) => {
                let asked = format!(
                    "{}; no name server: {}: {error}",
                    hosts_file.display(),
                    resolv_conf.display()
                );
                return (Err("not in the hosts file".to_owned()), asked);
            }
        };
        let servers: Vec<String> = config
            .name_servers
            .iter_mut()
            .map(|server| {
                for connection in &mut server.connections {
                    connection.port = *nameserver_port;
                }
                server.ip.to_string()
            })
            .collect();
        let asked = format!(
            "{}, then name servers {} on port {nameserver_port}",
            hosts_file.display(),
            servers.join(", ")
        );
        // hickory makes `attempts` + 1 tries of each name of the search list, each bounded by
        // `timeout`: cut a try so that a server that never answers leaves time for the next
        // within the caller's share (resolv.conf's default 5 s would not fit at all).
        let tries = u32::try_from(options.attempts).map_or(u32::MAX, |n| n.saturating_add(1));
        options.timeout = options.timeout.min(within / tries);
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.use_hosts_file = ResolveHosts::Never; // read by `from_hosts_file`
        options.cache_size = 0; // a resolver lives for one lookup
        let resolver = hickory_resolver::Resolver::builder_with_config(
            config,
            TokioRuntimeProvider::default(),
        )
        .with_options(options)
        .build()
        .map_err(|e| format!("cannot set up the resolver: {e}"));
        (resolver, asked)
    }
}

/// The hosts file's addresses of `name` (as given: no search list), IPv4 first; none when
/// the file is missing or does not name it.
fn from_hosts_file(path: &Path, name: &str) -> Vec<IpAddr> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(name) = Name::from_str(name) else {
        return Vec::new();
    };
    let mut hosts = Hosts::default();
    if let Err(error) = hosts.read_hosts_conf(file) {
        // Lines before the unreadable one still count.
        tracing::warn!(file = %path.display(), %error, "cannot read all of the hosts file");
    }
    [RecordType::A, RecordType::AAAA]
        .into_iter()
        .filter_map(|kind| hosts.lookup_static_host(&Query::query(name.clone(), kind)))
        .flat_map(|found| {
            found
                .answers()
                .iter()
                .filter_map(|record| record.data.ip_addr())
                .collect::<Vec<_>>()
        })
        .collect()
}
