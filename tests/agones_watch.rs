//! `GET /watch/gameserver` of the real agent binary: the current GameServer then one line a
//! change, a stream outliving the server's answer limit, a reservation lapsing reported on
//! its own, and the bound on open streams, freed when their client goes.

#[allow(dead_code)]
#[path = "support/agones_sdk.rs"]
mod agones_sdk;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use agones_sdk::{assert_error, sdk, start};
use serde_json::{json, Value};
use support::{wait_until, DEADLINE};

/// A `/watch/gameserver` stream, read a `{"result"}` line at a time.
struct Watch {
    reader: BufReader<TcpStream>,
}

impl Watch {
    fn open(addr: SocketAddr) -> Watch {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream
            .write_all(b"GET /watch/gameserver HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        Watch {
            reader: BufReader::new(stream),
        }
    }

    /// The status line and headers, or the whole answer of a refused stream.
    fn status(&mut self) -> u16 {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The next JSON line (the body is chunked: the size lines are skipped).
    fn next(&mut self) -> Value {
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "the stream ended"
            );
            if let Ok(value) = serde_json::from_str::<Value>(line.trim()) {
                return value;
            }
        }
    }
}

#[test]
fn the_watch_streams_the_current_game_server_then_each_change() {
    let (_agent, _api, addr) = start();
    let mut watch = Watch::open(addr);
    assert_eq!(watch.status(), 200);
    let first = watch.next();
    assert_eq!(first["result"]["status"]["state"], "Scheduled", "{first}");
    let label = json!({"key": "phase", "value": "lobby"});
    sdk(addr, "PUT", "/metadata/label", label);
    let second = watch.next();
    assert_eq!(
        second["result"]["object_meta"]["labels"]["agones.dev/sdk-phase"], "lobby",
        "{second}"
    );
    sdk(addr, "POST", "/ready", json!({}));
    let mut seen = watch.next();
    while seen["result"]["status"]["state"] != "Ready" {
        seen = watch.next();
    }
}

/// A stream with nothing to say outlives the server's 10 s answer limit, and a reservation
/// lapsing is a change the stream reports on its own.
#[test]
fn a_watch_outlives_the_answer_limit_and_reports_a_reservation_lapsing() {
    let (_agent, _api, addr) = start();
    sdk(addr, "POST", "/ready", json!({}));
    let mut watch = Watch::open(addr);
    assert_eq!(watch.status(), 200);
    let state = |value: &Value| value["result"]["status"]["state"].clone();
    let mut seen = watch.next();
    while state(&seen) != "Ready" {
        seen = watch.next();
    }
    let started = std::time::Instant::now();
    assert_eq!(
        sdk(addr, "POST", "/reserve", json!({"seconds": "12"})).0,
        200
    );
    assert_eq!(state(&watch.next()), "Reserved");
    assert_eq!(state(&watch.next()), "Ready");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(12), "{took:?}");
}

#[test]
fn watch_streams_are_bounded_and_freed_when_their_client_goes() {
    let (_agent, _api, addr) = start();
    let mut open: Vec<Watch> = (0..edgegap_agent::api::MAX_WAITING_CLIENTS)
        .map(|_| {
            let mut watch = Watch::open(addr);
            assert_eq!(watch.status(), 200);
            watch.next();
            watch
        })
        .collect();
    let (status, body) = sdk(addr, "GET", "/watch/gameserver", Value::Null);
    assert_error((status, body), 429, 8);
    open.pop();
    assert!(wait_until(DEADLINE, || {
        let mut watch = Watch::open(addr);
        watch.status() == 200
    }));
}
