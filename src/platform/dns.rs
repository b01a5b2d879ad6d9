//! Name resolution without glibc NSS: the agent is a static binary, and static glibc cannot
//! load the NSS modules `getaddrinfo` relies on (a `scratch` image has none anyway).
//!
//! [`Resolver`] answers from `/etc/hosts` first, then asks the `nameserver`s of
//! `/etc/resolv.conf` over UDP (A, then AAAA when there is no A record). IP-literal URLs never
//! get here (the client uses them as they are). No search domains, no TCP fallback: the
//! platform's URLs are fully qualified names whose answers fit a UDP datagram. Both files are
//! read at each lookup, which is rare (a handful of platform calls per deployment).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::retry::{JitterSource, SplitMix64};

const QTYPE_A: u16 = 1;
const QTYPE_AAAA: u16 = 28;
/// Time a nameserver has to answer one query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the resolver's configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `/etc/hosts` and `/etc/resolv.conf` (or other paths), read at each lookup.
    Files {
        hosts: PathBuf,
        resolv_conf: PathBuf,
    },
    /// Fixed entries and nameservers (tests).
    Fixed {
        hosts: Vec<(String, IpAddr)>,
        nameservers: Vec<SocketAddr>,
    },
}

#[derive(Debug, Clone)]
pub struct Resolver {
    source: Source,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(
        "{name}: no address found (hosts file and nameservers {nameservers:?}); last error: {last}"
    )]
    NotFound {
        name: String,
        nameservers: Vec<SocketAddr>,
        last: String,
    },
}

impl Resolver {
    pub fn system() -> Self {
        Resolver::new(Source::Files {
            hosts: PathBuf::from("/etc/hosts"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        })
    }

    pub fn new(source: Source) -> Self {
        Resolver { source }
    }

    fn config(&self) -> (Vec<(String, IpAddr)>, Vec<SocketAddr>) {
        match &self.source {
            Source::Fixed { hosts, nameservers } => (hosts.clone(), nameservers.clone()),
            Source::Files { hosts, resolv_conf } => (
                parse_hosts(&std::fs::read_to_string(hosts).unwrap_or_default()),
                parse_resolv_conf(&std::fs::read_to_string(resolv_conf).unwrap_or_default()),
            ),
        }
    }

    /// Every address of `name`, hosts-file entries first.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = name.trim_end_matches('.');
        let (hosts, nameservers) = self.config();
        let from_hosts: Vec<IpAddr> = hosts
            .iter()
            .filter(|(host, _)| host.eq_ignore_ascii_case(name))
            .map(|(_, ip)| *ip)
            .collect();
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        let mut last = "no nameserver configured".to_owned();
        for qtype in [QTYPE_A, QTYPE_AAAA] {
            for server in &nameservers {
                match query(*server, name, qtype).await {
                    Ok(addresses) if !addresses.is_empty() => return Ok(addresses),
                    Ok(_) => last = format!("{server}: no record of type {qtype}"),
                    Err(error) => last = format!("{server}: {error}"),
                }
            }
        }
        Err(DnsError::NotFound {
            name: name.to_owned(),
            nameservers,
            last,
        })
    }
}

/// `IP name [aliases...]` lines; comments and malformed lines are skipped.
pub fn parse_hosts(text: &str) -> Vec<(String, IpAddr)> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        entries.extend(words.map(|name| (name.to_owned(), ip)));
    }
    entries
}

/// The `nameserver` lines, on port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            // An IPv6 address may carry a zone (`fe80::1%eth0`), which we cannot use here.
            let ip = words.next()?.parse::<IpAddr>().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

async fn query(server: SocketAddr, name: &str, qtype: u16) -> Result<Vec<IpAddr>, String> {
    let id = (SplitMix64::from_entropy().next_u64() & 0xFFFF) as u16;
    let request = encode_query(id, name, qtype)?;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(&request).await.map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 1500];
    tokio::time::timeout(QUERY_TIMEOUT, async {
        loop {
            let length = socket.recv(&mut buffer).await.map_err(|e| e.to_string())?;
            // Datagrams with another id are strays (or spoofing attempts): wait on.
            if let Some(answer) = decode_answer(id, &buffer[..length], qtype)? {
                return Ok(answer);
            }
        }
    })
    .await
    .map_err(|_| "no answer in time".to_owned())?
}

/// A standard recursive query for one name.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut message = Vec::with_capacity(18 + name.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name:?} is not a valid host name"));
        }
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.push(0);
    message.extend_from_slice(&qtype.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes());
    Ok(message)
}

/// The addresses of type `qtype` in a response; `Ok(None)` when the datagram is not the
/// response to query `id`.
pub fn decode_answer(id: u16, message: &[u8], qtype: u16) -> Result<Option<Vec<IpAddr>>, String> {
    let short = || "truncated DNS response".to_owned();
    let header = message.get(..12).ok_or_else(short)?;
    if u16::from_be_bytes([header[0], header[1]]) != id || header[2] & 0x80 == 0 {
        return Ok(None);
    }
    match header[3] & 0x0F {
        0 => {}
        3 => return Ok(Some(Vec::new())),
        code => return Err(format!("nameserver answered with error code {code}")),
    }
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let answers = u16::from_be_bytes([header[6], header[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at).ok_or_else(short)? + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..answers {
        at = skip_name(message, at).ok_or_else(short)?;
        let fixed = message.get(at..at + 10).ok_or_else(short)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let length = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = message.get(at + 10..at + 10 + length).ok_or_else(short)?;
        at += 10 + length;
        match (rtype, <[u8; 4]>::try_from(data), <[u8; 16]>::try_from(data)) {
            (QTYPE_A, Ok(v4), _) if qtype == QTYPE_A => addresses.push(IpAddr::from(v4)),
            (QTYPE_AAAA, _, Ok(v6)) if qtype == QTYPE_AAAA => addresses.push(IpAddr::from(v6)),
            _ => {} // CNAMEs and other records: the recursive server also gave the addresses.
        }
    }
    Ok(Some(addresses))
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        match length {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv_conf_parse() {
        let hosts =
            parse_hosts("# c\n127.0.0.1 localhost api.local # x\n::1 ip6-localhost\nbad line\n");
        assert_eq!(hosts.len(), 3);
        assert_eq!(
            hosts[1],
            ("api.local".to_owned(), IpAddr::from([127, 0, 0, 1]))
        );
        let servers = parse_resolv_conf("search x\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver ::1\n");
        assert_eq!(
            servers,
            vec!["10.0.0.2:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
    }

    /// A nameserver on 127.0.0.1:0 answering with a CNAME (compressed) and two A records.
    #[tokio::test]
    async fn queries_a_nameserver_over_udp() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            let (length, peer) = server.recv_from(&mut buffer).await.unwrap();
            let query = &buffer[..length];
            let mut reply = query.to_vec();
            reply[2] = 0x81;
            reply[3] = 0x80;
            reply[7] = 3;
            // CNAME pointing anywhere, then two A records; names as pointers to the question.
            reply.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 12]);
            for last in [7u8, 8] {
                reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, last]);
            }
            // A stray datagram with another id first: it must be ignored.
            let mut stray = reply.clone();
            stray[0] ^= 0xFF;
            server.send_to(&stray, peer).await.unwrap();
            server.send_to(&reply, peer).await.unwrap();
        });
        let resolver = Resolver::new(Source::Fixed {
            hosts: vec![("pinned.example".to_owned(), IpAddr::from([1, 2, 3, 4]))],
            nameservers: vec![address],
        });
        assert_eq!(
            resolver.lookup("PINNED.example.").await.unwrap(),
            vec![IpAddr::from([1, 2, 3, 4])]
        );
        let found = resolver.lookup("api.example.com").await.unwrap();
        assert_eq!(
            found,
            vec![IpAddr::from([10, 0, 0, 7]), IpAddr::from([10, 0, 0, 8])]
        );
    }

    #[test]
    fn decoding_rejects_garbage_without_panicking() {
        assert!(decode_answer(1, &[0, 1, 0x81], QTYPE_A).is_err());
        let mut message = encode_query(9, "a.b", QTYPE_A).unwrap();
        message[2] = 0x81;
        message[7] = 1; // one answer announced, none present
        assert!(decode_answer(9, &message, QTYPE_A).is_err());
        assert_eq!(decode_answer(8, &message, QTYPE_A), Ok(None));
        assert!(encode_query(1, "a..b", QTYPE_A).is_err());
    }
}
