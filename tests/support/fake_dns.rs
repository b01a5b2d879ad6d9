//! Fake name servers on loopback for the resolver's tests, and the files that point a
//! [`Resolver`] at them (a hosts file, a resolv.conf and the servers' port) without touching
//! the machine's `/etc`.
//!
//! [`FakeDns`] answers A and AAAA queries from a fixed zone over UDP and TCP on one address
//! (NXDOMAIN for a name it does not know), records every question with its transport, and can
//! answer UDP with the truncation bit only, so the answer must be fetched over TCP.
//! [`SilentDns`] reads queries and never answers. Include it with
//! `#[path = "support/fake_dns.rs"] mod fake_dns;`.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use edgegap_agent::platform::dns::{Resolver, Source};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// One question a server was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The name as asked, lower case, with its final dot.
    pub name: String,
    pub kind: RecordType,
    pub over_tcp: bool,
}

#[derive(Default)]
struct State {
    /// Names lower case, with their final dot.
    zone: Vec<(String, IpAddr)>,
    truncate_udp: bool,
    asked: Vec<Asked>,
}

/// A UDP socket and a TCP listener on one address. With port 0 the kernel picks the UDP port,
/// which TCP may already hold (the two port spaces are separate): try another then.
async fn bind_udp_and_tcp(ip: IpAddr, port: u16) -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..100 {
        let udp = UdpSocket::bind((ip, port)).await.unwrap();
        let addr = udp.local_addr().unwrap();
        match TcpListener::bind(addr).await {
            Ok(tcp) => return (udp, tcp, addr),
            Err(error) if port == 0 && error.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(error) => panic!("cannot listen on tcp {addr}: {error}"),
        }
    }
    panic!("no port of {ip} is free for both UDP and TCP after 100 tries");
}

/// A name server on `addr` (UDP and TCP) answering from its zone.
pub struct FakeDns {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeDns {
    /// Serves `zone` (name, address) on `ip` and `port` (0: any free port) on this runtime.
    pub async fn start(ip: IpAddr, port: u16, zone: &[(&str, IpAddr)]) -> FakeDns {
        let (udp, tcp, addr) = bind_udp_and_tcp(ip, port).await;
        let zone = zone
            .iter()
            .map(|(name, ip)| (format!("{}.", name.to_lowercase()), *ip))
            .collect();
        let state = Arc::new(Mutex::new(State {
            zone,
            ..State::default()
        }));
        tokio::spawn(serve_udp(udp, Arc::clone(&state)));
        tokio::spawn(serve_tcp(tcp, Arc::clone(&state)));
        FakeDns { addr, state }
    }

    /// From now on, UDP answers carry the truncation bit and no record.
    pub fn truncate_udp(&self) -> &Self {
        self.state.lock().unwrap().truncate_udp = true;
        self
    }

    pub fn asked(&self) -> Vec<Asked> {
        self.state.lock().unwrap().asked.clone()
    }
}

async fn serve_udp(socket: UdpSocket, state: Arc<Mutex<State>>) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer).await else {
            return;
        };
        if let Some(reply) = answer(&buffer[..length], &state, false) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(serve_tcp_connection(stream, Arc::clone(&state)));
    }
}

/// DNS over TCP: each message prefixed with its length, on 2 bytes.
async fn serve_tcp_connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    loop {
        let Ok(length) = stream.read_u16().await else {
            return;
        };
        let mut query = vec![0u8; usize::from(length)];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = answer(&query, &state, true) else {
            return;
        };
        let mut framed = u16::try_from(reply.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The reply to one query message, recorded in `state`; `None` for what is not a query.
fn answer(query: &[u8], state: &Mutex<State>, over_tcp: bool) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let question = query.queries.first()?.clone();
    let mut state = state.lock().unwrap();
    let name = question.name().to_lowercase().to_string();
    state.asked.push(Asked {
        name: name.clone(),
        kind: question.query_type(),
        over_tcp,
    });
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    let known: Vec<IpAddr> = state
        .zone
        .iter()
        .filter(|(zone_name, _)| *zone_name == name)
        .map(|(_, ip)| *ip)
        .collect();
    if state.truncate_udp && !over_tcp {
        reply.metadata.truncation = true;
    } else if known.is_empty() {
        reply.metadata.response_code = ResponseCode::NXDomain;
    } else {
        for ip in known {
            let rdata = RData::from(ip);
            if rdata.record_type() == question.query_type() {
                reply.add_answer(Record::from_rdata(question.name().clone(), 60, rdata));
            }
        }
    }
    reply.to_vec().ok()
}

/// A name server that reads every query (UDP and TCP on `addr`) and never answers.
pub struct SilentDns {
    pub addr: SocketAddr,
    queries: Arc<Mutex<usize>>,
}

impl SilentDns {
    pub async fn start(ip: IpAddr, port: u16) -> SilentDns {
        let (udp, tcp, addr) = bind_udp_and_tcp(ip, port).await;
        let queries = Arc::new(Mutex::new(0));
        let counted = Arc::clone(&queries);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while udp.recv_from(&mut buffer).await.is_ok() {
                *counted.lock().unwrap() += 1;
            }
        });
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = tcp.accept().await {
                held.push(stream);
            }
        });
        SilentDns { addr, queries }
    }

    /// How many UDP queries arrived (none was answered).
    pub fn queries(&self) -> usize {
        *self.queries.lock().unwrap()
    }
}

/// A directory of one test's resolver files.
pub fn files_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgegap-agent-dns-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A resolver reading `hosts` as its hosts file and `resolv_conf` as its resolv.conf (no
/// file when `None`), asking the name servers on `port`.
pub fn resolver(test: &str, hosts: &str, resolv_conf: Option<&str>, port: u16) -> Resolver {
    let dir = files_dir(test);
    let hosts_file = dir.join("hosts");
    std::fs::write(&hosts_file, hosts).unwrap();
    let resolv_conf_file = dir.join("resolv.conf");
    if let Some(text) = resolv_conf {
        std::fs::write(&resolv_conf_file, text).unwrap();
    }
    Resolver::new(Source {
        hosts_file,
        resolv_conf: resolv_conf_file,
        nameserver_port: port,
    })
}
