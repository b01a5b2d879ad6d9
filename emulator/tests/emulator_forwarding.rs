//! Join addresses that work locally: the emulator forwards each port's external port to its
//! internal port on 127.0.0.1 while the deployment lives, as the platform does. Real sockets:
//! a tiny game in the test (TCP and UDP echo servers on the internal ports), clients on the
//! external ports, data both ways; the forwarders gone once the deployment is terminated; an
//! idle UDP client's relay socket closed; `--same-ports` forwarding nothing.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};

use edgegap_test_support::emulator::{bind_tcp, bind_udp, Emu};
use edgegap_test_support::{wait_until, DEADLINE};
use serde_json::{json, Value};

/// A TCP echo server on a free port: answers each read with `echo:<data>`.
fn tcp_echo(listener: TcpListener) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        return;
                    }
                    let mut answer = b"echo:".to_vec();
                    answer.extend_from_slice(&buffer[..n]);
                    if stream.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A UDP echo server: answers `echo:<data>` and records each datagram's source address.
fn udp_echo(socket: UdpSocket) -> (u16, Arc<Mutex<Vec<SocketAddr>>>) {
    let port = socket.local_addr().unwrap().port();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1024];
        while let Ok((n, peer)) = socket.recv_from(&mut buffer) {
            seen.lock().unwrap().push(peer);
            let mut answer = b"echo:".to_vec();
            answer.extend_from_slice(&buffer[..n]);
            let _ = socket.send_to(&answer, peer);
        }
    });
    (port, peers)
}

/// A TCP listener and a UDP socket on the same free port number.
fn tcp_and_udp() -> (TcpListener, UdpSocket) {
    loop {
        let listener = bind_tcp();
        let port = listener.local_addr().unwrap().port();
        if let Ok(socket) = UdpSocket::bind(("127.0.0.1", port)) {
            return (listener, socket);
        }
    }
}

fn udp_client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket
}

/// Sends `data` to the external port; returns the answer, which must come from that port.
fn udp_round_trip(client: &UdpSocket, external: u16, data: &str) -> String {
    client
        .send_to(data.as_bytes(), ("127.0.0.1", external))
        .unwrap();
    let mut buffer = [0u8; 1024];
    let (n, from) = client.recv_from(&mut buffer).unwrap();
    assert_eq!(
        from.port(),
        external,
        "the answer comes from the external port"
    );
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

fn tcp_round_trip(stream: &mut TcpStream, data: &str) -> String {
    stream.write_all(data.as_bytes()).unwrap();
    let mut buffer = [0u8; 1024];
    let n = stream.read(&mut buffer).unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

fn external(status: &Value, name: &str) -> u16 {
    let port = status["ports"][name]["external"].as_u64().unwrap();
    u16::try_from(port).unwrap()
}

/// Whether nothing holds `port` for UDP on 127.0.0.1 (a bind there succeeds).
fn udp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

/// A deployment (the fake game idling) whose ports are the test's echo servers.
fn deploy(emu: &Emu, ports: Value) -> (String, Value) {
    let id = emu.deploy_game(json!({ "ports": ports }), &[]);
    let status = emu.wait_status(&id, "Status.READY", DEADLINE);
    (id, status)
}

#[test]
fn tcp_and_udp_reach_the_game_through_the_external_ports_both_ways() {
    let tcp = tcp_echo(bind_tcp());
    let (udp, udp_peers) = udp_echo(bind_udp());
    let (both_tcp, both_udp) = tcp_and_udp();
    let both = tcp_echo(both_tcp);
    let (_, both_peers) = udp_echo(both_udp);
    let emu = Emu::start(&[]);
    let (id, status) = deploy(
        &emu,
        json!([
            {"name": "web", "port": tcp, "protocol": "TCP"},
            {"name": "game", "port": udp, "protocol": "UDP"},
            {"name": "voice", "port": both, "protocol": "TCP/UDP"},
        ]),
    );
    for name in ["web", "game", "voice"] {
        assert_ne!(external(&status, name), status["ports"][name]["internal"]);
    }

    let mut stream = TcpStream::connect(("127.0.0.1", external(&status, "web"))).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(tcp_round_trip(&mut stream, "hello"), "echo:hello");
    assert_eq!(tcp_round_trip(&mut stream, "again"), "echo:again");

    // Two players: each keeps one relay socket (the game sees one stable peer per player),
    // and each gets its own answers.
    let (alice, bob) = (udp_client(), udp_client());
    let game = external(&status, "game");
    assert_eq!(udp_round_trip(&alice, game, "a1"), "echo:a1");
    assert_eq!(udp_round_trip(&bob, game, "b1"), "echo:b1");
    assert_eq!(udp_round_trip(&alice, game, "a2"), "echo:a2");
    let peers = udp_peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 3);
    assert_eq!(
        peers[0], peers[2],
        "alice's datagrams share one relay socket"
    );
    assert_ne!(peers[0], peers[1], "bob has a relay socket of his own");
    assert!(peers.iter().all(|p| p.ip().is_loopback()));

    // TCP/UDP: both transports on the one external port.
    let voice = external(&status, "voice");
    let mut stream = TcpStream::connect(("127.0.0.1", voice)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(tcp_round_trip(&mut stream, "tcp"), "echo:tcp");
    assert_eq!(udp_round_trip(&alice, voice, "udp"), "echo:udp");
    assert_eq!(both_peers.lock().unwrap().len(), 1);

    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}

#[test]
fn the_forwarders_are_gone_once_the_deployment_is_terminated() {
    let tcp = tcp_echo(bind_tcp());
    let (udp, _) = udp_echo(bind_udp());
    let emu = Emu::start(&[]);
    let (id, status) = deploy(
        &emu,
        json!([
            {"name": "web", "port": tcp, "protocol": "TCP"},
            {"name": "game", "port": udp, "protocol": "UDP"},
        ]),
    );
    let (web, game) = (external(&status, "web"), external(&status, "game"));
    let mut open = TcpStream::connect(("127.0.0.1", web)).unwrap();
    open.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(tcp_round_trip(&mut open, "before"), "echo:before");
    let client = udp_client();
    assert_eq!(udp_round_trip(&client, game, "before"), "echo:before");
    assert!(!udp_free(game), "the relay holds the external UDP port");

    let resp = emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    // Released before the status says TERMINATED: no waiting needed.
    let refused = TcpStream::connect(("127.0.0.1", web)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    assert!(udp_free(game), "the external UDP port is released");
    // The connection opened before ends with the deployment, as a container's would.
    let mut buffer = [0u8; 16];
    assert!(matches!(open.read(&mut buffer), Ok(0) | Err(_)));
}

#[test]
fn an_idle_udp_client_loses_its_relay_socket_and_its_next_datagram_opens_one() {
    let (udp, peers) = udp_echo(bind_udp());
    let emu = Emu::start(&["--udp-idle-timeout", "300ms"]);
    let (id, status) = deploy(
        &emu,
        json!([{"name": "game", "port": udp, "protocol": "UDP"}]),
    );
    let game = external(&status, "game");
    let client = udp_client();
    assert_eq!(udp_round_trip(&client, game, "first"), "echo:first");
    let relay = peers.lock().unwrap()[0];
    assert!(
        !udp_free(relay.port()),
        "the relay socket is open while in use"
    );
    assert!(
        wait_until(DEADLINE, || udp_free(relay.port())),
        "the idle client's relay socket {relay} was not closed"
    );
    assert_eq!(udp_round_trip(&client, game, "later"), "echo:later");
    assert_eq!(peers.lock().unwrap().len(), 2);
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}

#[test]
fn same_ports_reports_the_internal_port_and_forwards_nothing() {
    let emu = Emu::start(&["--same-ports"]);
    // Free ports the emulator must leave alone: the test binds them after the deployment.
    let tcp = bind_tcp().local_addr().unwrap().port();
    let udp = bind_udp().local_addr().unwrap().port();
    let (id, status) = deploy(
        &emu,
        json!([
            // Bound only later, by the test: not a readiness check (`to_check` defaults to true).
            {"name": "web", "port": tcp, "protocol": "TCP", "to_check": false},
            {"name": "game", "port": udp, "protocol": "UDP"},
        ]),
    );
    assert_eq!(external(&status, "web"), tcp);
    assert_eq!(external(&status, "game"), udp);
    let tcp = tcp_echo(TcpListener::bind(("127.0.0.1", tcp)).unwrap());
    let (udp, _) = udp_echo(UdpSocket::bind(("127.0.0.1", udp)).unwrap());
    let mut stream = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(tcp_round_trip(&mut stream, "direct"), "echo:direct");
    assert_eq!(udp_round_trip(&udp_client(), udp, "direct"), "echo:direct");
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}

#[test]
fn a_game_not_listening_on_its_internal_port_is_said_once() {
    let internal = bind_tcp().local_addr().unwrap().port();
    let emu = Emu::start(&[]);
    let (id, status) = deploy(
        &emu,
        // Nothing ever listens: not a readiness check (`to_check` defaults to true).
        json!([{"name": "web", "port": internal, "protocol": "TCP", "to_check": false}]),
    );
    let web = external(&status, "web");
    for _ in 0..3 {
        // Accepted, then closed at once: nothing answers on the internal port.
        let mut stream = TcpStream::connect(("127.0.0.1", web)).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buffer = [0u8; 16];
        assert!(matches!(stream.read(&mut buffer), Ok(0) | Err(_)));
    }
    let said = format!("port web ({web} -> {internal}): nothing accepts on 127.0.0.1:{internal}");
    assert!(
        wait_until(DEADLINE, || emu.process.stderr().contains(&said)),
        "{}",
        emu.process.stderr()
    );
    assert_eq!(emu.process.stderr().matches(&said).count(), 1);
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}
