//! Name resolution and connecting, with real sockets: the agent's resolver (hickory) reading a
//! test's own hosts file and resolv.conf, fake name servers on loopback
//! (`tests/support/fake_dns.rs`), and the platform client trying every address of a name
//! within one attempt against a fake platform.

#[path = "support/fake_dns.rs"]
mod fake_dns;
#[path = "support/fake_platform.rs"]
mod fake_platform;
#[path = "support/log_capture.rs"]
mod log_capture;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use edgegap_agent::platform::client::{build_client_with_resolver, HttpOptions};
use edgegap_agent::platform::dns::Resolver;
use edgegap_agent::platform::{RetryPolicy, Secret, SelfStop, SelfStopOutcome, SelfStopTarget};
use fake_dns::{resolver, FakeDns, SilentDns};
use fake_platform::{FakePlatform, FixedJitter};
use hickory_proto::rr::RecordType;
use log_capture::{assert_token_absent, LogCapture};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A second loopback address (Linux routes all of 127/8 to `lo`).
const LOCAL_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// A lookup's share of an attempt in these tests.
const WITHIN: Duration = Duration::from_secs(3);
const TOKEN: &str = "dns-test-token-Xq9";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn the_hosts_file_answers_alone_for_the_names_it_knows() {
    let dns = FakeDns::start(LOCAL, 0, &[("platform.test", ip("10.9.9.9"))]).await;
    let hosts = "# a comment line\n\
                 127.0.0.1 localhost\n\
                 10.1.2.3\tplatform.test  alias.test   # an alias and a comment\n\
                 fd00::7 platform.test\n\
                 not-an-address broken.test\n";
    let resolver = resolver(
        "hosts",
        hosts,
        Some("nameserver 127.0.0.1\n"),
        dns.addr.port(),
    );

    // IPv4 first, then IPv6; any case; a final dot; aliases.
    let both = vec![ip("10.1.2.3"), ip("fd00::7")];
    assert_eq!(
        resolver.lookup("platform.test", WITHIN).await.unwrap(),
        both
    );
    assert_eq!(
        resolver.lookup("PLATFORM.Test.", WITHIN).await.unwrap(),
        both
    );
    assert_eq!(
        resolver.lookup("alias.test", WITHIN).await.unwrap(),
        vec![ip("10.1.2.3")]
    );
    // The name server, which knows platform.test otherwise, was not asked (not even for a
    // family the file lacks: alias.test has no IPv6 line).
    assert_eq!(dns.asked(), vec![]);

    // A name the file does not know goes to the name server; its NXDOMAIN is an error that
    // says what was asked.
    let error = resolver
        .lookup("missing.test", WITHIN)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("missing.test: no address found"),
        "{error}"
    );
    assert!(
        error.contains("hosts, then name servers 127.0.0.1 on port"),
        "{error}"
    );
    assert!(dns.asked().iter().any(|q| q.name == "missing.test."));

    // Without a resolv.conf the hosts file still answers, and the rest is an error naming
    // the missing file.
    let hosts_only = fake_dns::resolver("hosts-only", hosts, None, 53);
    assert_eq!(
        hosts_only.lookup("platform.test", WITHIN).await.unwrap(),
        both
    );
    let error = hosts_only
        .lookup("missing.test", WITHIN)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("resolv.conf"), "{error}");
    assert!(error.contains("missing.test"), "{error}");
}

#[tokio::test]
async fn a_name_server_on_loopback_answers_a_and_aaaa() {
    let zone = [
        ("api.test", ip("10.0.0.7")),
        ("api.test", ip("10.0.0.8")),
        ("api.test", ip("fd00::1")),
    ];
    let dns = FakeDns::start(LOCAL, 0, &zone).await;
    let resolver = resolver(
        "a-aaaa",
        "",
        Some("nameserver 127.0.0.1\n"),
        dns.addr.port(),
    );
    let found = resolver.lookup("api.test", WITHIN).await.unwrap();
    assert_eq!(found, vec![ip("10.0.0.7"), ip("10.0.0.8"), ip("fd00::1")]);
    let mut kinds: Vec<RecordType> = dns
        .asked()
        .iter()
        .filter(|q| q.name == "api.test." && !q.over_tcp)
        .map(|q| q.kind)
        .collect();
    kinds.sort_by_key(|kind| u16::from(*kind));
    assert_eq!(kinds, vec![RecordType::A, RecordType::AAAA]);
}

#[tokio::test]
async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    let dns = FakeDns::start(LOCAL, 0, &[("big.test", ip("10.0.0.9"))]).await;
    dns.truncate_udp();
    let resolver = resolver(
        "truncated",
        "",
        Some("nameserver 127.0.0.1\n"),
        dns.addr.port(),
    );
    assert_eq!(
        resolver.lookup("big.test", WITHIN).await.unwrap(),
        vec![ip("10.0.0.9")]
    );
    let asked = dns.asked();
    let a_over = |tcp: bool| {
        asked
            .iter()
            .any(|q| q.name == "big.test." && q.kind == RecordType::A && q.over_tcp == tcp)
    };
    assert!(a_over(false) && a_over(true), "{asked:?}");
}

#[tokio::test]
async fn a_short_name_resolves_through_the_search_list() {
    let dns = FakeDns::start(LOCAL, 0, &[("platform.second.test", ip("10.0.0.5"))]).await;
    let conf = "search first.test second.test\nnameserver 127.0.0.1\noptions ndots:1\n";
    let resolver = resolver("search", "", Some(conf), dns.addr.port());
    assert_eq!(
        resolver.lookup("platform", WITHIN).await.unwrap(),
        vec![ip("10.0.0.5")]
    );
    // The search list in its order: first.test (unknown), then second.test.
    let names: Vec<String> = dns.asked().into_iter().map(|q| q.name).collect();
    let first = names.iter().position(|n| n == "platform.first.test.");
    let second = names.iter().position(|n| n == "platform.second.test.");
    assert!(first.is_some() && first < second, "{names:?}");
}

#[tokio::test]
async fn a_first_name_server_that_never_answers_leaves_the_answer_to_the_second() {
    let dns = FakeDns::start(LOCAL, 0, &[("api.test", ip("10.0.0.3"))]).await;
    let silent = SilentDns::start(LOCAL_2, dns.addr.port()).await;
    // resolv.conf's default timeout is 5 s, longer than the whole lookup may take.
    let conf = "nameserver 127.0.0.2\nnameserver 127.0.0.1\n";
    let resolver = resolver("silent-first", "", Some(conf), dns.addr.port());
    let within = Duration::from_secs(2);
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(
            resolver.lookup("api.test", within).await.unwrap(),
            vec![ip("10.0.0.3")]
        );
        assert!(started.elapsed() < within, "{:?}", started.elapsed());
    }
    assert!(silent.queries() > 0, "the silent server was never asked");

    // With no other server, the lookup gives up at its bound, naming what it asked.
    let only_silent = fake_dns::resolver(
        "silent-only",
        "",
        Some("nameserver 127.0.0.2\n"),
        dns.addr.port(),
    );
    let started = Instant::now();
    let error = only_silent
        .lookup("api.test", Duration::from_millis(600))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(error.starts_with("api.test: "), "{error}");
    assert!(error.contains("127.0.0.2"), "{error}");
}

/// A listener on `addr` that never accepts, whose accept queue is full: Linux drops further
/// SYNs, so a connect to it hangs as to a black-holed address.
async fn black_hole(addr: std::net::SocketAddr) -> (tokio::net::TcpListener, TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(addr).unwrap();
    let listener = socket.listen(0).unwrap();
    let filler = TcpStream::connect(addr).await.unwrap();
    (listener, filler)
}

fn self_stop(
    client: edgegap_agent::platform::HttpClient,
    url: String,
    attempt: Duration,
) -> SelfStop {
    let target = SelfStopTarget {
        url: url.parse().unwrap(),
        token: Secret::new(TOKEN),
    };
    let policy = RetryPolicy::new(
        1,
        Duration::from_millis(1),
        Duration::from_millis(1),
        attempt,
        Duration::from_secs(10),
    )
    .unwrap();
    SelfStop::with_jitter(Ok(target), client, policy, Box::new(FixedJitter(0)))
}

#[tokio::test]
async fn a_first_address_that_black_holes_connections_gives_way_to_the_second_within_the_attempt() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    let port = fake.addr.port();
    let hole = std::net::SocketAddr::new(LOCAL_2, port);
    let _hole = black_hole(hole).await;
    // The black hole really hangs a connect.
    let probe = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(hole)).await;
    assert!(probe.is_err(), "{probe:?}");

    let hosts = "127.0.0.2 platform.test\n127.0.0.1 platform.test\n";
    let resolver = resolver("black-hole", hosts, None, 53);
    let client = build_client_with_resolver(&HttpOptions::default(), resolver).unwrap();
    let attempt = Duration::from_secs(2);
    let url = format!("http://platform.test:{port}/v1/self/stop/a/b");
    let started = Instant::now();
    let outcome = self_stop(client, url, attempt).stop().await;
    let took = started.elapsed();

    // One attempt, accepted by the second address, after the first one's share (half the
    // attempt) ran out.
    assert_eq!(
        outcome,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 1
        }
    );
    assert!(took >= attempt / 2 && took < attempt, "{took:?}");
    assert_eq!(fake.requests().len(), 1);
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("cannot connect; trying the next address"))
        .unwrap_or_else(|| panic!("no line for the failed address in:\n{text}"));
    assert!(line.contains(&format!("127.0.0.2:{port}")), "{line}");
    assert!(line.contains("no connection within 1s"), "{line}");
    assert_token_absent(TOKEN, &text);
}

/// A name only the name server knows, through the client: resolved, connected, answered.
#[tokio::test]
async fn the_client_reaches_a_name_the_name_server_gives() {
    let fake = FakePlatform::start().await;
    let dns = FakeDns::start(
        LOCAL,
        0,
        &[
            ("platform.test", LOCAL),
            ("platform.test", IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ],
    )
    .await;
    let resolver: Resolver = resolver(
        "client",
        "",
        Some("nameserver 127.0.0.1\n"),
        dns.addr.port(),
    );
    let client = build_client_with_resolver(&HttpOptions::default(), resolver).unwrap();
    let url = format!("http://platform.test:{}/v1/self/stop/a/b", fake.addr.port());
    let outcome = self_stop(client, url, Duration::from_secs(5)).stop().await;
    assert_eq!(
        outcome,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 1
        }
    );
    assert_eq!(
        fake.requests()[0].header("host"),
        Some(format!("platform.test:{}", fake.addr.port()).as_bytes())
    );
}
