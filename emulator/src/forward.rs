//! Join addresses that work locally: the platform forwards each port's external port to the
//! container's internal port, and so does the emulator, on 127.0.0.1, for as long as the
//! deployment lives. Each external port is bound when the deployment is created (so no other
//! program can take it in between) and released before the deployment is reported over.
//!
//! - TCP (`TCP`, `HTTP`, `HTTPS`, `WS`, `WSS`): every accepted connection is spliced both
//!   ways to a new connection to `127.0.0.1:<internal>`, half-closes passed on. A connection
//!   nothing accepts on the internal port is closed (and said once per port: the game does not
//!   listen where the mapping says).
//! - UDP: a relay that keeps one upstream socket per client address, so the game sees one
//!   stable peer per player and its answers go back to that player; a client silent in both
//!   directions for the idle timeout (`--udp-idle-timeout`) loses its upstream socket, and
//!   its next datagram starts a new one. At most [`MAX_UDP_CLIENTS`] at once.
//! - `TCP/UDP`: both, on the same port number.
//!
//! With `--same-ports` the external port is the internal one and nothing is forwarded.
//!
//! Every byte through a forwarded port is counted ([`Traffic`]): the deployment's network
//! metrics.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::say;
use super::store::DeployedPort;
use super::validate::Port;

/// Beyond this many UDP clients of one port, datagrams from new clients are dropped.
pub const MAX_UDP_CLIENTS: usize = 1024;
/// The largest UDP payload.
const DATAGRAM: usize = 65_535;
/// Tries to find a port number free for both TCP and UDP (`TCP/UDP` ports).
const DUAL_ATTEMPTS: usize = 32;

/// Bytes through a deployment's forwarded ports: received (players → game) and transmitted
/// (game → players).
#[derive(Debug, Default)]
pub struct Traffic {
    received: AtomicU64,
    transmitted: AtomicU64,
}

impl Traffic {
    pub fn totals(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.transmitted.load(Ordering::Relaxed),
        )
    }
    fn count(counter: &AtomicU64, bytes: usize) {
        counter.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// The forwarding of one deployment's ports; [`Forwarding::stop`] ends it.
pub struct Forwarding {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Forwarding {
    /// Stops forwarding and waits until every external port is released.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Forwarding {
    /// A deployment that never started (its creation failed) stops forwarding too.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Which transports a protocol is carried on.
fn transports(port: &Port) -> (bool, bool) {
    if port.is_udp() {
        (false, true)
    } else if port.is_tcp_and_udp() {
        (true, true)
    } else {
        (true, false)
    }
}

/// Binds the external port of every port (a free one on 127.0.0.1) and starts forwarding it
/// to its internal port; with `same_ports`, reports external = internal and binds nothing.
/// `id` names the deployment in the emulator's messages.
pub fn open(
    id: &str,
    ports: &[Port],
    same_ports: bool,
    udp_idle: Duration,
) -> io::Result<(Vec<DeployedPort>, Forwarding, Arc<Traffic>)> {
    let (stop, stopped) = watch::channel(false);
    let traffic = Arc::new(Traffic::default());
    let mut forwarding = Forwarding {
        stop,
        tasks: Vec::new(),
    };
    let mut deployed = Vec::new();
    for port in ports {
        if same_ports {
            deployed.push(DeployedPort {
                port: port.clone(),
                external: port.port,
            });
            continue;
        }
        let (tcp, udp) = transports(port);
        let (listener, socket) = bind(tcp, udp)?;
        let external = match (&listener, &socket) {
            (Some(listener), _) => listener.local_addr()?.port(),
            (None, Some(socket)) => socket.local_addr()?.port(),
            (None, None) => continue,
        };
        let label = format!(
            "deployment {id}: port {} ({external} -> {})",
            port.name, port.port
        );
        if let Some(listener) = listener {
            let listener = TcpListener::from_std(listener)?;
            let task = forward_tcp(
                listener,
                port.port,
                label.clone(),
                stopped.clone(),
                traffic.clone(),
            );
            forwarding.tasks.push(tokio::spawn(task));
        }
        if let Some(socket) = socket {
            let socket = UdpSocket::from_std(socket)?;
            let task = relay_udp(
                socket,
                port.port,
                udp_idle,
                label,
                stopped.clone(),
                traffic.clone(),
            );
            forwarding.tasks.push(tokio::spawn(task));
        }
        deployed.push(DeployedPort {
            port: port.clone(),
            external,
        });
    }
    Ok((deployed, forwarding, traffic))
}

type Bound = (Option<std::net::TcpListener>, Option<std::net::UdpSocket>);

/// A free port on 127.0.0.1 for TCP, UDP or both (the same number).
fn bind(tcp: bool, udp: bool) -> io::Result<Bound> {
    let any = (Ipv4Addr::LOCALHOST, 0);
    let nonblocking_tcp =
        |listener: std::net::TcpListener| listener.set_nonblocking(true).map(|()| listener);
    let nonblocking_udp =
        |socket: std::net::UdpSocket| socket.set_nonblocking(true).map(|()| socket);
    match (tcp, udp) {
        (true, false) => Ok((
            Some(nonblocking_tcp(std::net::TcpListener::bind(any)?)?),
            None,
        )),
        (false, true) => Ok((
            None,
            Some(nonblocking_udp(std::net::UdpSocket::bind(any)?)?),
        )),
        _ => {
            let mut last = io::Error::other("no attempt made");
            for _ in 0..DUAL_ATTEMPTS {
                let listener = std::net::TcpListener::bind(any)?;
                let port = listener.local_addr()?.port();
                match std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)) {
                    Ok(socket) => {
                        return Ok((
                            Some(nonblocking_tcp(listener)?),
                            Some(nonblocking_udp(socket)?),
                        ))
                    }
                    Err(error) => last = error,
                }
            }
            Err(io::Error::new(
                last.kind(),
                format!("no port free for both TCP and UDP in {DUAL_ATTEMPTS} tries: {last}"),
            ))
        }
    }
}

/// Resolves when forwarding is to stop (or its owner is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn internal_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Accepts on the external port and splices each connection to the internal port.
async fn forward_tcp(
    listener: TcpListener,
    internal: u16,
    label: String,
    mut stop: watch::Receiver<bool>,
    traffic: Arc<Traffic>,
) {
    let mut connections: JoinSet<io::Result<()>> = JoinSet::new();
    let mut warned = false;
    loop {
        tokio::select! {
            () = stopping(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(splice(client, internal, traffic.clone()));
                }
                Err(error) => {
                    // Out of descriptors, typically: wait instead of spinning.
                    say(&format!("{label}: cannot accept a connection: {error}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Ok(Err(error)) = ended {
                    if !warned {
                        warned = true;
                        say(&format!("{label}: nothing accepts on 127.0.0.1:{internal}, the internal port ({error}); connections to the external port are closed"));
                    }
                }
            }
        }
    }
    // Open connections end with the deployment, as a container's would.
    connections.shutdown().await;
}

/// One TCP connection, both ways, half-closes passed on and bytes counted; an error only
/// when the internal port refuses it.
async fn splice(client: TcpStream, internal: u16, traffic: Arc<Traffic>) -> io::Result<()> {
    let upstream = TcpStream::connect(internal_addr(internal)).await?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::join!(
        pump(client_read, upstream_write, &traffic.received),
        pump(upstream_read, client_write, &traffic.transmitted),
    );
    Ok(())
}

/// Copies one direction until EOF or an error (a reset is the end of the connection, not
/// the forwarder's problem), then shuts the writing side down.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    counter: &AtomicU64,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        Traffic::count(counter, n);
    }
    let _ = to.shutdown().await;
}

/// One UDP client: its own socket towards the internal port, and when it was last active.
struct Session {
    upstream: Arc<UdpSocket>,
    last_active: Arc<Mutex<Instant>>,
    answers: JoinHandle<()>,
}

impl Session {
    async fn open(
        external: &Arc<UdpSocket>,
        client: SocketAddr,
        internal: u16,
        traffic: Arc<Traffic>,
    ) -> io::Result<Session> {
        let upstream = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        upstream.connect(internal_addr(internal)).await?;
        let upstream = Arc::new(upstream);
        let last_active = Arc::new(Mutex::new(Instant::now()));
        let answers = tokio::spawn(answer(
            upstream.clone(),
            external.clone(),
            client,
            last_active.clone(),
            traffic,
        ));
        Ok(Session {
            upstream,
            last_active,
            answers,
        })
    }

    fn touch(&self) {
        touch(&self.last_active);
    }

    fn idle_for(&self, idle: Duration) -> bool {
        let last = *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.elapsed() >= idle
    }

    /// Ends the session and waits until its upstream socket is closed.
    async fn close(mut self) {
        self.answers.abort();
        let _ = (&mut self.answers).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.answers.abort();
    }
}

fn touch(last_active: &Mutex<Instant>) {
    *last_active.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
}

/// The game's answers to one client, sent back from the external port.
async fn answer(
    upstream: Arc<UdpSocket>,
    external: Arc<UdpSocket>,
    client: SocketAddr,
    last_active: Arc<Mutex<Instant>>,
    traffic: Arc<Traffic>,
) {
    let mut buffer = vec![0u8; DATAGRAM];
    loop {
        match upstream.recv(&mut buffer).await {
            Ok(n) => {
                touch(&last_active);
                if external.send_to(&buffer[..n], client).await.is_ok() {
                    Traffic::count(&traffic.transmitted, n);
                }
            }
            // The game does not listen (yet): an ICMP "port unreachable" for a datagram.
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(_) => return,
        }
    }
}

/// Receives on the external port and relays each client's datagrams through its session.
async fn relay_udp(
    socket: UdpSocket,
    internal: u16,
    idle: Duration,
    label: String,
    mut stop: watch::Receiver<bool>,
    traffic: Arc<Traffic>,
) {
    let socket = Arc::new(socket);
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut sweep = tokio::time::interval((idle / 4).max(Duration::from_millis(10)));
    let mut buffer = vec![0u8; DATAGRAM];
    loop {
        tokio::select! {
            () = stopping(&mut stop) => break,
            received = socket.recv_from(&mut buffer) => {
                let Ok((n, client)) = received else { continue };
                if !sessions.contains_key(&client) {
                    if sessions.len() >= MAX_UDP_CLIENTS {
                        continue;
                    }
                    match Session::open(&socket, client, internal, traffic.clone()).await {
                        Ok(session) => {
                            sessions.insert(client, session);
                        }
                        Err(error) => {
                            say(&format!("{label}: cannot open a UDP socket for {client}: {error}"));
                            continue;
                        }
                    }
                }
                if let Some(session) = sessions.get(&client) {
                    session.touch();
                    if session.upstream.send(&buffer[..n]).await.is_ok() {
                        Traffic::count(&traffic.received, n);
                    }
                }
            }
            _ = sweep.tick() => sessions.retain(|_, session| !session.idle_for(idle)),
        }
    }
    for (_, session) in sessions.drain() {
        session.close().await;
    }
}
