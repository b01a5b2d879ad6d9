//! The API's server over real loopback sockets, in process: binding (and the default address
//! giving way), keep-alive, the head, body and answer deadlines, the connection cap and who
//! gives way at it, shutdown. The server runs on its own thread and current-thread runtime,
//! as in the agent; the clients are plain blocking sockets.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgegap_agent::api::{self, ApiState, BoundApi, ConnectionCut, ListenAddr, Metrics};
use edgegap_agent::lifecycle::{AgentStatus, Lifecycle};
use tokio::sync::{mpsc, oneshot, watch};

struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(header_read_timeout: Duration) -> Server {
        Server::start_with(move |bound| bound.with_header_read_timeout(header_read_timeout))
    }

    /// A server whose limits `configure` sets.
    fn start_with(configure: impl FnOnce(BoundApi) -> BoundApi + Send + 'static) -> Server {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let metrics = Arc::new(Metrics::default());
        let server_metrics = Arc::clone(&metrics);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let bound = configure(api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap());
                let (requests, _keep) = mpsc::unbounded_channel();
                let (status, status_rx) = watch::channel(AgentStatus::starting());
                status.send_modify(|s| {
                    s.lifecycle = Lifecycle::Running;
                    s.child_pid = Some(1);
                });
                addr_tx.send(bound.local_addr()).unwrap();
                let state = ApiState::new(
                    requests,
                    status_rx,
                    serde_json::json!({}),
                    None,
                    None,
                    server_metrics,
                );
                bound
                    .serve(Arc::new(state), async {
                        let _ = stopped.await;
                    })
                    .await;
                drop(status);
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Server {
            addr,
            metrics,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[test]
fn binds_loopback_port_0_and_serves_keep_alive_requests() {
    let server = Server::start(Duration::from_secs(5));
    assert!(server.addr.ip().is_loopback());
    assert_ne!(server.addr.port(), 0);
    let mut conn = http::Conn::connect(server.addr).unwrap();
    for _ in 0..3 {
        let reply = conn.request("GET", "/healthz", &[], b"").unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let reply = conn.request("GET", "/v1/status", &[], b"").unwrap();
    assert_eq!(reply.json()["state"], "running");
}

#[test]
fn a_client_that_never_finishes_its_header_is_dropped_while_others_are_served() {
    let timeout = Duration::from_millis(300);
    let server = Server::start(timeout);
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        .unwrap();

    // Served while the slow client holds its connection.
    assert_eq!(http::get(server.addr, "/healthz").status, 200);

    // The slow client's connection is closed by the server after the timeout (a read returns
    // EOF or a reset; hyper may first write a 408). The read timeout above is the deadline.
    let mut buf = Vec::new();
    let result = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    match result {
        Ok(_) => {}
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the slow client was not disconnected: {e}"
        ),
    }
    assert!(
        waited >= timeout,
        "closed after {waited:?}, before the timeout"
    );
    assert!(
        waited < Duration::from_secs(5),
        "closed only after {waited:?}"
    );
    // And the server still serves.
    assert_eq!(http::get(server.addr, "/healthz").status, 200);
}

#[test]
fn a_declared_body_over_the_limit_is_refused_before_it_is_sent() {
    let server = Server::start(Duration::from_secs(5));
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /v1/match/end HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        api::MAX_BODY_BYTES + 1
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reply = vec![0; 1024];
    let n = stream.read(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"error\":\"body too large\""), "{reply}");
}

#[test]
fn shutdown_stops_accepting() {
    let mut server = Server::start(Duration::from_secs(5));
    assert_eq!(http::get(server.addr, "/healthz").status, 200);
    server.shut_down();
    assert!(http::call(server.addr, "GET", "/healthz", &[], b"").is_err());
}

#[test]
fn a_taken_address_is_an_error_that_names_it_with_exit_code_64() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Err(error) = runtime.block_on(api::bind(addr)) else {
        panic!("bound a taken address");
    };
    let text = error.to_string();
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.contains("--api-addr"), "{text}");
    assert_eq!(error.exit_code(), 64);
}

/// Whether the server has closed `stream`: EOF or a reset within the deadline (after the
/// answers it may still have sent).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// Whether `stream` is still open right now (nothing to read, no EOF).
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let open =
        matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

#[test]
fn a_body_sent_a_byte_at_a_time_gets_408_at_the_body_deadline_and_is_closed() {
    let deadline = Duration::from_millis(400);
    let server = Server::start_with(move |bound| bound.with_body_read_timeout(deadline));
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"POST /v1/heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    // One byte every 50 ms, from another thread, until the server stops taking them.
    let mut dribble = slow.try_clone().unwrap();
    let dribbler = std::thread::spawn(move || {
        for _ in 0..100 {
            if dribble.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    // Served meanwhile.
    assert_eq!(http::get(server.addr, "/healthz").status, 200);
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"body timeout\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(waited >= deadline, "answered after {waited:?}");
    assert!(
        waited < Duration::from_secs(5),
        "answered only after {waited:?}"
    );
    dribbler.join().unwrap();
    assert_eq!(server.metrics.requests(api::Route::Heartbeat, 408), 1);
    // The heartbeat was never sent on.
    assert_eq!(server.metrics.requests(api::Route::Heartbeat, 202), 0);
}

#[test]
fn at_the_cap_a_new_client_is_served_and_the_longest_waiting_connection_gives_way() {
    let server = Server::start_with(|bound| bound.with_max_connections(4));
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        let stream = TcpStream::connect(server.addr).unwrap();
        idle.push(stream);
        // Each accepted before the next connects, so their ages are known.
        assert!(support::wait_until(Duration::from_secs(5), || {
            server.metrics.open_connections() >= idle.len() as u64
        }));
    }
    let reply = http::get(server.addr, "/healthz");
    assert_eq!(reply.status, 200, "a fresh request is served at the cap");
    assert!(
        closed_by_server(&mut idle[0], Duration::from_secs(5)),
        "the oldest gave way"
    );
    for (i, stream) in idle.iter().enumerate().skip(1) {
        assert!(still_open(stream), "connection {i} was closed too");
    }
    assert!(server.metrics.cuts(ConnectionCut::Evicted) >= 1);
}

#[test]
fn at_the_cap_the_client_holding_the_most_connections_gives_way_first() {
    let server = Server::start_with(|bound| bound.with_max_connections(4));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 127.0.0.2 is loopback too, but another client address.
    let from = |source: &str| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let stream = runtime.block_on(socket.connect(server.addr)).unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    };
    // The oldest connection is the game's own, from 127.0.0.1...
    let mut game = from("127.0.0.1");
    let mut flood: Vec<TcpStream> = Vec::new();
    assert!(support::wait_until(Duration::from_secs(5), || {
        server.metrics.open_connections() >= 1
    }));
    // ...then three from a client at 127.0.0.2.
    for _ in 0..3 {
        flood.push(from("127.0.0.2"));
    }
    assert!(support::wait_until(Duration::from_secs(5), || {
        server.metrics.open_connections() >= 4
    }));
    // A fifth connection: the flooding client's oldest gives way, not the game's older one.
    let mut fifth = from("127.0.0.2");
    assert!(closed_by_server(&mut flood[0], Duration::from_secs(5)));
    assert!(still_open(&game), "the client with one connection lost it");
    // And the game's connection still works.
    game.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 12];
    game.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    game.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    fifth.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}

#[test]
fn a_client_that_does_not_read_its_answers_is_closed_at_the_answer_deadline() {
    let deadline = Duration::from_millis(300);
    let server = Server::start_with(move |bound| bound.with_answer_timeout(deadline));
    let stream = TcpStream::connect(server.addr).unwrap();
    // Thousands of pipelined requests whose answers are never read: the server's writes
    // stall once the socket buffers are full. The writer ends when the server closes.
    let mut writer = stream.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
        for _ in 0..1000 {
            if writer.write_all(&request).is_err() {
                return true;
            }
        }
        false
    });
    assert!(
        support::wait_until(Duration::from_secs(20), || {
            server.metrics.cuts(ConnectionCut::Stalled) == 1
        }),
        "the stalled connection was not closed"
    );
    assert!(
        writing.join().unwrap(),
        "the server kept reading a client that never read"
    );
    assert_eq!(http::get(server.addr, "/healthz").status, 200);
    drop(stream);
}

#[test]
fn the_default_address_gives_way_to_a_mapped_port_and_to_a_taken_one() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The game's mapping uses 7070: never bound by the agent, free or not.
    let bound = runtime
        .block_on(api::bind_listen(
            ListenAddr::Default,
            &[7777, api::DEFAULT_API_PORT],
        ))
        .unwrap();
    assert!(bound.local_addr().ip().is_loopback());
    assert_ne!(bound.local_addr().port(), api::DEFAULT_API_PORT);
    drop(bound);
    // 7070 held by another socket (this one, or whoever holds it already).
    let _held = std::net::TcpListener::bind(("127.0.0.1", api::DEFAULT_API_PORT));
    let bound = runtime
        .block_on(api::bind_listen(ListenAddr::Default, &[]))
        .unwrap();
    assert!(bound.local_addr().ip().is_loopback());
    assert_ne!(bound.local_addr().port(), api::DEFAULT_API_PORT);
    // An address the user gave stays an error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let given = runtime.block_on(api::bind_listen(ListenAddr::Given(addr), &[]));
    assert_eq!(given.err().map(|e| e.exit_code()), Some(64));
}

#[test]
fn a_head_over_16_kib_is_refused_with_431() {
    let server = Server::start(Duration::from_secs(5));
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let filler = "x".repeat(api::MAX_HEAD_BYTES);
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
    // The server may stop reading (and close) before all of it is written.
    let _ = stream.write_all(head.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A head within the limit is served.
    let filler = "x".repeat(api::MAX_HEAD_BYTES / 2);
    let reply = http::call(
        server.addr,
        "GET",
        "/healthz",
        &[("X-Filler", &filler)],
        b"",
    )
    .unwrap();
    assert_eq!(reply.status, 200);
}
