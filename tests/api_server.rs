//! The API's server over real loopback sockets, in process: binding, keep-alive, the header
//! read timeout, shutdown. The server runs on its own thread and current-thread runtime, as in
//! the agent; the clients are plain blocking sockets.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgegap_agent::api::{self, ApiState, Metrics};
use edgegap_agent::lifecycle::{AgentStatus, Lifecycle};
use tokio::sync::{mpsc, oneshot, watch};

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(header_read_timeout: Duration) -> Server {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let bound = api::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap()
                    .with_header_read_timeout(header_read_timeout);
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
                    Arc::new(Metrics::default()),
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
