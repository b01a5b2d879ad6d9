//! A fake Edgegap platform for component and black-box tests, on 127.0.0.1:0.
//!
//! It records every request (method, path, headers, arrival time on the tokio clock) and
//! answers from a script: queued replies first (`fail N times`), then a default reply. A
//! reply can be a status (with an optional `Retry-After` and body), a status sent only after
//! a delay, or a hang that never answers; or, for a while after the port came up, one status
//! to everything ([`FakePlatform::fail_for`]). Faults below HTTP: a port that refuses connections
//! for a while before it listens ([`FakePlatform::start_down_for`]), TLS handshakes counted
//! when they fail ([`FakePlatform::failed_handshakes`]), and a server that answers every
//! connection with garbage ([`FakePlatform::start_garbage`]). Include it with
//! `#[path = "support/fake_platform.rs"] mod fake_platform;`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::Instant;

use edgegap_agent::platform::retry::JitterSource;

/// A jitter source that always gives the same value: `u64::MAX` gives the full backoff
/// ceiling, `0` no delay, so a test knows the retry schedule.
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub u64);

impl JitterSource for FixedJitter {
    fn next_u64(&mut self) -> u64 {
        self.0
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// What the fake answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with a `Retry-After` header of this text (e.g. "3").
    RetryAfter(u16, String),
    /// A status with a JSON body.
    Json(u16, String),
    /// A status with a body of any bytes (not necessarily UTF-8).
    Bytes(u16, Vec<u8>),
    /// Never answer (the connection stays open).
    Hang,
    /// This status, with an empty JSON body, once this long has passed.
    Delayed(Duration, u16),
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    default: Option<Reply>,
    requests: Vec<Recorded>,
    /// When the port started to accept connections.
    up_at: Option<Instant>,
    /// For this long after `up_at`, every request gets this status.
    fail_window: Option<(Duration, u16)>,
    connections: usize,
    failed_handshakes: usize,
}

/// What the fake speaks on its connections.
#[derive(Clone)]
enum Mode {
    Http(Option<tokio_rustls::TlsAcceptor>),
    /// A few bytes that are neither HTTP nor TLS, then close.
    Garbage,
}

#[derive(Clone)]
pub struct FakePlatform {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    scheme: &'static str,
}

/// A fake platform on a runtime of its own, for tests that stay synchronous: keep the runtime
/// for as long as the platform is used, e.g. `on_own_runtime(FakePlatform::start)`.
pub fn on_own_runtime<F: std::future::Future<Output = FakePlatform>>(
    start: impl FnOnce() -> F,
) -> (tokio::runtime::Runtime, FakePlatform) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(start());
    (runtime, fake)
}

impl FakePlatform {
    /// Starts the fake on the current tokio runtime; it answers 200 until told otherwise.
    pub async fn start() -> FakePlatform {
        Self::serve(Mode::Http(None), None, LOOPBACK).await
    }

    /// As [`FakePlatform::start`], but for the first `window` the port is bound and not
    /// listening, so connections to it are refused (as while the platform's API is down);
    /// then it listens. The port is held the whole time, so nothing else can take it.
    pub async fn start_down_for(window: Duration) -> FakePlatform {
        Self::serve(Mode::Http(None), Some(window), LOOPBACK).await
    }

    /// A server that writes garbage on every connection and closes it: neither a TLS
    /// handshake nor an HTTP answer ever succeeds. Its connections are counted.
    pub async fn start_garbage() -> FakePlatform {
        Self::serve(Mode::Garbage, None, LOOPBACK).await
    }

    /// As [`FakePlatform::start`], over TLS, with a certificate for `127.0.0.1` and
    /// `platform.test` signed by tests/support/test_ca.pem.
    pub async fn start_tls() -> FakePlatform {
        Self::start_tls_on(LOOPBACK).await
    }

    /// As [`FakePlatform::start_tls`], listening on `ip` (port 0), e.g. the Docker bridge
    /// gateway, so containers reach it.
    pub async fn start_tls_on(ip: IpAddr) -> FakePlatform {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{crypto::ring, ServerConfig};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/");
        let certs = CertificateDer::pem_file_iter(format!("{dir}test_platform_cert.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(format!("{dir}test_platform_key.pem")).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::serve(Mode::Http(Some(tls)), None, ip).await
    }

    async fn serve(mode: Mode, down_for: Option<Duration>, ip: IpAddr) -> FakePlatform {
        let socket = match ip {
            IpAddr::V4(_) => TcpSocket::new_v4(),
            IpAddr::V6(_) => TcpSocket::new_v6(),
        }
        .unwrap();
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
        let addr = socket.local_addr().unwrap();
        let scheme = match &mode {
            Mode::Http(Some(_)) => "https",
            _ => "http",
        };
        let state = Arc::new(Mutex::new(State::default()));
        // Listening now, unless the port is to refuse connections for a while first.
        let listening = match down_for {
            None => {
                state.lock().unwrap().up_at = Some(Instant::now());
                Ok(socket.listen(1024).unwrap())
            }
            Some(window) => Err((socket, window)),
        };
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            let listener: TcpListener = match listening {
                Ok(listener) => listener,
                Err((socket, window)) => {
                    tokio::time::sleep(window).await;
                    let listener = socket.listen(1024).unwrap();
                    shared.lock().unwrap().up_at = Some(Instant::now());
                    listener
                }
            };
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve_connection(Arc::clone(&shared), mode.clone(), stream));
            }
        });
        FakePlatform {
            addr,
            state,
            scheme,
        }
    }

    /// Queues replies to give, in order, before the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.state.lock().unwrap().script.extend(replies);
        self
    }

    /// Fails the next `n` requests with `status`.
    pub fn fail_times(&self, n: usize, status: u16) -> &Self {
        self.script(std::iter::repeat_n(Reply::Status(status), n))
    }

    /// Answers every request with `status` for `window` after the port began to accept
    /// connections (a platform whose API is up but failing), then follows the script.
    pub fn fail_for(&self, window: Duration, status: u16) -> &Self {
        self.state.lock().unwrap().fail_window = Some((window, status));
        self
    }

    /// The reply once the script is used up (200 by default).
    pub fn set_default(&self, reply: Reply) -> &Self {
        self.state.lock().unwrap().default = Some(reply);
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// When the port began to accept connections (`None` while it still refuses them).
    pub fn up_at(&self) -> Option<Instant> {
        self.state.lock().unwrap().up_at
    }

    /// Connections accepted, whatever became of them.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// TLS handshakes that failed (e.g. the client did not trust the certificate).
    pub fn failed_handshakes(&self) -> usize {
        self.state.lock().unwrap().failed_handshakes
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }
}

async fn serve_connection(state: Arc<Mutex<State>>, mode: Mode, mut stream: tokio::net::TcpStream) {
    let tls = match mode {
        Mode::Http(tls) => tls,
        Mode::Garbage => {
            let _ = stream
                .write_all(b"GARBAGE: neither TLS nor HTTP\r\n\r\n")
                .await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let shared = Arc::clone(&state);
    let service = service_fn(move |request| answer(Arc::clone(&shared), request));
    let http = hyper::server::conn::http1::Builder::new();
    let _ = match tls {
        None => http.serve_connection(TokioIo::new(stream), service).await,
        Some(tls) => match tls.accept(stream).await {
            Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
            Err(_) => {
                state.lock().unwrap().failed_handshakes += 1;
                return;
            }
        },
    };
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(Recorded {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            at: Instant::now(),
        });
        let failing = match (state.fail_window, state.up_at) {
            (Some((window, status)), Some(up)) if Instant::now() < up + window => Some(status),
            _ => None,
        };
        match (failing, state.script.pop_front()) {
            (Some(status), Some(reply)) => {
                state.script.push_front(reply);
                Reply::Status(status)
            }
            (Some(status), None) => Reply::Status(status),
            (None, Some(reply)) => reply,
            (None, None) => state.default.clone().unwrap_or(Reply::Status(200)),
        }
    };
    let response = Response::builder();
    let response = match reply {
        Reply::Status(status) => response
            .status(status)
            .body(Full::new(Bytes::from_static(b"{}"))),
        Reply::RetryAfter(status, after) => response
            .status(status)
            .header("retry-after", after)
            .body(Full::new(Bytes::new())),
        Reply::Bytes(status, body) => response.status(status).body(Full::new(Bytes::from(body))),
        Reply::Json(status, body) => response
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body))),
        Reply::Hang => std::future::pending().await,
        Reply::Delayed(after, status) => {
            tokio::time::sleep(after).await;
            response
                .status(status)
                .body(Full::new(Bytes::from_static(b"{}")))
        }
    };
    Ok(response.unwrap())
}
