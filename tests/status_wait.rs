//! Status without polling, black-box with the real binary: `GET /v1/status?wait=&after=`
//! answers at the change and not before, or unchanged when its wait ends; `GET /v1/events`
//! streams every change as one JSON line; waiting clients are bounded and given back when
//! their client goes; a stop reaches a waiting game with the time it has left.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use support::{start_with_api, wait_until};

fn wait_for(what: &str, deadline: Duration, condition: impl FnMut() -> bool) {
    assert!(
        wait_until(deadline, condition),
        "timed out after {deadline:?} waiting for {what}"
    );
}

/// The value of a metric line `name value` in `GET /metrics`.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = http::get(addr, "/metrics").body;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

fn waiting(addr: SocketAddr) -> u64 {
    metric(addr, "edgegap_agent_api_waiting_clients")
}

/// The status once the game runs (its pid published): the version nothing else will change
/// until the test does something.
fn settled_status(addr: SocketAddr) -> Value {
    let mut status = Value::Null;
    wait_for("the game to be running", Duration::from_secs(10), || {
        status = http::get(addr, "/v1/status").json();
        !status["child_pid"].is_null()
    });
    status
}

/// A GET sent on its own thread, with a read timeout long enough for a long poll.
fn get_in_background(addr: SocketAddr, path: &str) -> thread::JoinHandle<(http::Reply, Duration)> {
    let path = path.to_owned();
    thread::spawn(move || {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let reply = read_reply(&mut BufReader::new(stream));
        (reply, started.elapsed())
    })
}

fn read_reply(reader: &mut impl BufRead) -> http::Reply {
    let (status, headers) = read_head(reader);
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    http::Reply {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    (status, headers)
}

/// A `GET /v1/events` stream, read line by line through its chunked encoding.
struct Events {
    reader: BufReader<TcpStream>,
    pending: String,
}

impl Events {
    fn open(addr: SocketAddr, headers: &str) -> Result<Events, http::Reply> {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "GET /v1/events HTTP/1.1\r\nHost: x\r\n{headers}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        if status != 200 {
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            return Err(http::Reply {
                status,
                headers,
                body: String::from_utf8(body).unwrap(),
            });
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/x-ndjson")
        );
        assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"));
        Ok(Events {
            reader,
            pending: String::new(),
        })
    }

    /// The next JSON line of the stream.
    fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.pending.find('\n') {
                let line: String = self.pending.drain(..=end).collect();
                return serde_json::from_str(line.trim_end()).unwrap();
            }
            let mut size = String::new();
            self.reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            assert!(size > 0, "the stream ended");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            self.pending
                .push_str(std::str::from_utf8(&chunk[..size]).unwrap());
        }
    }

    /// The next line whose `predicate` holds (a change may come as several versions).
    fn next_where(&mut self, mut predicate: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let line = self.next();
            if predicate(&line) {
                return line;
            }
        }
    }
}

#[test]
fn a_long_poll_answers_at_the_change_and_not_before() {
    let (mut agent, addr) = start_with_api(&[], &[]);
    let version = settled_status(addr)["version"].as_u64().unwrap();
    assert!(version >= 1);

    let poll = get_in_background(addr, &format!("/v1/status?wait=30s&after={version}"));
    wait_for("the long poll to wait", Duration::from_secs(5), || {
        waiting(addr) == 1
    });
    assert!(
        !poll.is_finished(),
        "the long poll answered with nothing new"
    );
    let ready = http::call(addr, "POST", "/v1/ready", &[], b"").unwrap();
    assert_eq!(ready.status, 202);
    let (reply, took) = poll.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let status = reply.json();
    assert_eq!(status["ready"], true, "{status}");
    assert!(status["version"].as_u64().unwrap() > version, "{status}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    wait_for(
        "the waiting place to be given back",
        Duration::from_secs(5),
        || waiting(addr) == 0,
    );

    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_long_poll_with_nothing_new_answers_unchanged_when_its_wait_ends() {
    let (mut agent, addr) = start_with_api(&[], &[]);
    let version = settled_status(addr)["version"].as_u64().unwrap();

    let (reply, took) = get_in_background(addr, &format!("/v1/status?wait=1500ms&after={version}"))
        .join()
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["version"], version);
    assert!(
        took >= Duration::from_millis(1500),
        "answered after {took:?}"
    );
    assert!(took < Duration::from_secs(6), "answered after {took:?}");

    // Without `after`, the wait is for the next change after the current version.
    let poll = get_in_background(addr, "/v1/status?wait=30s");
    wait_for("the long poll to wait", Duration::from_secs(5), || {
        waiting(addr) == 1
    });
    http::call(addr, "POST", "/v1/players/connect", &[], br#"{"id":"p1"}"#).unwrap();
    let (reply, _) = poll.join().unwrap();
    let status = reply.json();
    assert_eq!(status["players"], 1, "{status}");
    assert!(status["version"].as_u64().unwrap() > version);

    // A heartbeat is not a change: it wakes no one.
    let version = http::get(addr, "/v1/status").json()["version"]
        .as_u64()
        .unwrap();
    let poll = get_in_background(addr, &format!("/v1/status?wait=1s&after={version}"));
    wait_for("the long poll to wait", Duration::from_secs(5), || {
        waiting(addr) == 1
    });
    http::call(addr, "POST", "/v1/heartbeat", &[], b"").unwrap();
    let (reply, took) = poll.join().unwrap();
    assert_eq!(reply.json()["version"], version);
    assert!(took >= Duration::from_secs(1), "woken after {took:?}");

    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_version_the_agent_never_had_or_an_old_one_answers_at_once() {
    let (mut agent, addr) = start_with_api(&[], &[]);
    let version = settled_status(addr)["version"].as_u64().unwrap();
    for after in [0, version - 1, version + 1, u64::MAX] {
        let (reply, took) = get_in_background(addr, &format!("/v1/status?wait=30s&after={after}"))
            .join()
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["version"], version, "after={after}");
        assert!(took < Duration::from_secs(5), "after={after}: {took:?}");
    }
    // No wait, or a zero wait: the status at once.
    for query in ["", "?after=1", "?wait=0s"] {
        let reply = http::get(addr, &format!("/v1/status{query}"));
        assert_eq!(reply.status, 200, "{query}");
    }
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_bad_query_is_refused_with_what_was_wrong() {
    let (mut agent, addr) = start_with_api(&[], &[]);
    for (query, named) in [
        ("wait=soon", "wait"),
        ("wait=301s", "at most 5m"),
        ("wait=18446744073709551616", "wait"),
        ("after=-1", "after"),
        ("after=1.5", "after"),
        ("wiat=30s", "wiat"),
    ] {
        let reply = http::get(addr, &format!("/v1/status?{query}"));
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        let body = reply.json();
        assert_eq!(body["error"], "invalid query");
        assert!(
            body["detail"].as_str().unwrap().contains(named),
            "{query}: {body}"
        );
    }
    assert_eq!(waiting(addr), 0);
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_waiting_game_learns_of_the_stop_at_once_with_the_time_it_has_left() {
    let (mut agent, addr) = start_with_api(&["--grace-period", "20s"], &["--ignore-term"]);
    let version = settled_status(addr)["version"].as_u64().unwrap();
    let mut events = Events::open(addr, "").unwrap();
    assert_eq!(events.next()["version"], version);
    let poll = get_in_background(addr, &format!("/v1/status?wait=60s&after={version}"));
    wait_for("both to wait", Duration::from_secs(5), || {
        waiting(addr) == 2
    });

    let signalled = Instant::now();
    agent.signal(Signal::SIGTERM);
    let (reply, _) = poll.join().unwrap();
    let learned = signalled.elapsed();
    let status = reply.json();
    assert_eq!(status["state"], "stopping", "{status}");
    let left = status["ms_left"].as_u64().unwrap();
    // Grace 20 s minus the 1 s kill margin, less what has passed.
    assert!(left > 10_000 && left <= 19_000, "{status}");
    assert!(
        learned < Duration::from_secs(5),
        "learned after {learned:?}"
    );
    let streamed = events.next_where(|line| line["state"] == "stopping");
    assert!(streamed["ms_left"].as_u64().unwrap() <= 19_000);
    assert!(streamed["deadline_unix_ms"].as_u64().unwrap() > 0);

    // The game ignores TERM: a second stop request sends it INT, which ends it.
    agent.signal(Signal::SIGINT);
    drop(events);
    agent.wait_exit(Duration::from_secs(30));
}

#[test]
fn the_event_stream_sends_the_status_then_every_change() {
    let (mut agent, addr) = start_with_api(&[], &[]);
    let version = settled_status(addr)["version"].as_u64().unwrap();
    let mut events = Events::open(addr, "").unwrap();
    let first = events.next();
    assert_eq!(first["version"], version);
    assert_eq!(first["state"], "starting");

    // A stream quiet for longer than the API's 10 s answer timeout is not cut: it is an
    // answer in progress, not a client keeping the agent waiting. (An 11 s long poll with
    // nothing new is the clock.)
    let (quiet, took) = get_in_background(addr, &format!("/v1/status?wait=11s&after={version}"))
        .join()
        .unwrap();
    assert_eq!(quiet.json()["version"], version);
    assert!(took >= Duration::from_secs(11));

    http::call(addr, "POST", "/v1/ready", &[], b"").unwrap();
    let ready = events.next_where(|line| line["ready"] == true);
    assert_eq!(ready["state"], "running");
    assert!(ready["version"].as_u64().unwrap() > version);

    http::call(addr, "POST", "/v1/players/connect", &[], br#"{"id":"a"}"#).unwrap();
    let joined = events.next_where(|line| line["players"] == 1);
    assert!(joined["version"].as_u64() > ready["version"].as_u64());

    // The match end (its self-stop 60 s away), then the platform's stop: every step is a
    // line, in order.
    http::call(
        addr,
        "POST",
        "/v1/match/end",
        &[],
        br#"{"reason":"over","delay":"60s"}"#,
    )
    .unwrap();
    let ending = events.next_where(|line| line["state"] == "ending");
    assert_eq!(ending["reason"], "over");

    agent.signal(Signal::SIGTERM);
    let stopping = events.next_where(|line| line["state"] != "ending");
    assert_eq!(stopping["state"], "stopping", "{stopping}");
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).0.code(), Some(143));
}

#[test]
fn waiting_clients_are_bounded_and_given_back_when_they_go() {
    let (mut agent, addr) = start_with_api(&[], &[]);
    let version = settled_status(addr)["version"].as_u64().unwrap();
    let path = format!("/v1/status?wait=5m&after={version}");

    // 48 long polls and 16 streams fill the 64 places.
    let mut polls = Vec::new();
    for _ in 0..48 {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        polls.push(stream);
    }
    let mut streams: Vec<Events> = (0..16).map(|_| Events::open(addr, "").unwrap()).collect();
    for stream in &mut streams {
        assert_eq!(stream.next()["version"], version);
    }
    wait_for("64 waiting clients", Duration::from_secs(10), || {
        waiting(addr) == 64
    });

    let refused = http::get(addr, &path);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.json()["detail"].as_str().unwrap().contains("64"));
    let refused = Events::open(addr, "")
        .err()
        .expect("a 65th stream was taken");
    assert_eq!(refused.status, 503);
    // The plain status is always served.
    assert_eq!(http::get(addr, "/v1/status").status, 200);

    // Clients that go away give their place back without any change to wake them.
    drop(polls);
    drop(streams);
    wait_for(
        "the places of clients gone to be given back",
        Duration::from_secs(10),
        || waiting(addr) == 0,
    );
    let poll = get_in_background(addr, &format!("/v1/status?wait=30s&after={version}"));
    wait_for("a new long poll to wait", Duration::from_secs(5), || {
        waiting(addr) == 1
    });
    http::call(addr, "POST", "/v1/ready", &[], b"").unwrap();
    assert_eq!(poll.join().unwrap().0.json()["ready"], true);

    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));
}

#[test]
fn with_guarded_reads_waiting_needs_the_token() {
    let (mut agent, addr) =
        start_with_api(&["--api-token", "s3cret-token", "--api-guard-reads"], &[]);
    assert_eq!(http::get(addr, "/v1/status?wait=1s").status, 401);
    assert_eq!(Events::open(addr, "").err().unwrap().status, 401);
    let mut events = Events::open(addr, "Authorization: Bearer s3cret-token\r\n").unwrap();
    assert_eq!(events.next()["state"], "starting");
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));
}
