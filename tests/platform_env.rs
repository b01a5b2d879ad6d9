//! Table tests of the `ARBITRIUM_*` parser, through its `from_iter` seam only.

use std::net::IpAddr;

use edgegap_agent::platform::env::*;
use edgegap_agent::platform::Deployment;

const TOKEN: &str = "delete-token-s3cr3t-value";

fn parse(pairs: &[(&str, &str)]) -> (PlatformEnv, Vec<EnvProblem>) {
    PlatformEnv::from_iter(pairs.iter().copied())
}

const MAPPING: &str = r#"{"ports":{"gameport":{"name":"gameport","internal":7777,"external":31669,"protocol":"UDP","tls_upgrade":false,"link":"c0653765de3b.pr.edgegap.net:31669","proxy":65002},"web-socket":{"name":"web-socket","internal":8080,"external":31670,"protocol":"WS"}}}"#;
const LOCATION: &str = r#"{"city":"Montreal","country":"Canada","continent":"North America","administrative_division":"Quebec","timezone":"Eastern Time","latitude":45.508888,"longitude":-73.561668}"#;

fn full() -> Vec<(&'static str, &'static str)> {
    vec![
        (REQUEST_ID, "c0653765de3b"),
        (HOST_ID, "alpha-north-america-95fab093"),
        (PUBLIC_IP, "100.10.0.85"),
        (PORTS_MAPPING, MAPPING),
        ("ARBITRIUM_PORT_GAMEPORT_INTERNAL", "7777"),
        ("ARBITRIUM_PORT_GAMEPORT_EXTERNAL", "31669"),
        ("ARBITRIUM_PORT_GAMEPORT_PROTOCOL", "udp"),
        ("ARBITRIUM_PORT_WEB_SOCKET_EXTERNAL", "31670"),
        (DEPLOYMENT_LOCATION, LOCATION),
        (DEPLOYMENT_TAGS, r#"["eu","ranked"]"#),
        (VCPU_UNITS, "1024"),
        (MEMORY_MB, "2048"),
        (HOST_BASE_CLOCK_FREQUENCY, "3200"),
        (
            DELETE_URL,
            "https://api.edgegap.com/v1/self/stop/c0653765de3b/42",
        ),
        (DELETE_TOKEN, TOKEN),
        (
            CONTEXT_URL,
            "https://api.edgegap.com/v1/context/c0653765de3b/7",
        ),
        (CONTEXT_TOKEN, "context-token-value"),
        (BEACON_ENABLED, "true"),
        (BEACON_PUBLIC_IP, "1.2.3.4"),
        (BEACON_PORT_UDP_EXTERNAL, "30000"),
        (BEACON_PORT_TCP_EXTERNAL, "30001"),
        ("PATH", "/usr/bin"),
    ]
}

#[test]
fn a_full_environment_parses_into_typed_values() {
    let (env, problems) = parse(&full());
    assert_eq!(problems, []);
    assert!(env.on_edgegap);
    assert_eq!(env.request_id.as_deref(), Some("c0653765de3b"));
    assert_eq!(env.host_id.as_deref(), Some("alpha-north-america-95fab093"));
    assert_eq!(env.public_ip, Some(IpAddr::from([100, 10, 0, 85])));
    let game = &env.ports["gameport"];
    assert_eq!(
        (game.internal, game.external, game.protocol.as_str()),
        (7777, 31669, "UDP")
    );
    assert_eq!(
        game.link.as_deref(),
        Some("c0653765de3b.pr.edgegap.net:31669")
    );
    assert_eq!(env.ports["web-socket"].external, 31670);
    let location = env.location.as_ref().unwrap();
    assert_eq!(location.city.as_deref(), Some("Montreal"));
    assert_eq!(location.longitude, Some(-73.561668));
    assert_eq!(env.tags, ["eu", "ranked"]);
    assert_eq!((env.vcpu_units, env.memory_mb), (Some(1024), Some(2048)));
    assert_eq!(env.host_base_clock_frequency, Some(3200));
    assert_eq!(
        env.delete_url.as_ref().unwrap().path(),
        "/v1/self/stop/c0653765de3b/42"
    );
    assert_eq!(env.delete_token.as_ref().unwrap().expose(), TOKEN);
    assert_eq!(
        env.context_url.as_ref().unwrap().host(),
        Some("api.edgegap.com")
    );
    assert_eq!(
        env.context_token.as_ref().unwrap().expose(),
        "context-token-value"
    );
    assert_eq!(env.beacon_enabled, Some(true));
    assert_eq!(env.beacon_public_ip, Some(IpAddr::from([1, 2, 3, 4])));
    assert_eq!(
        (env.beacon_port_udp_external, env.beacon_port_tcp_external),
        (Some(30000), Some(30001))
    );
    let debug = format!("{env:?}");
    assert!(
        !debug.contains(TOKEN) && !debug.contains("context-token-value"),
        "{debug}"
    );
}

#[test]
fn no_arbitrium_variable_is_local_mode() {
    let (env, problems) = parse(&[("PATH", "/bin"), ("HOME", "/root"), ("ARBITRIUMX", "1")]);
    assert_eq!(problems, []);
    assert!(!env.on_edgegap);
    assert_eq!(env, PlatformEnv::default());
}

#[test]
fn unknown_variables_and_unknown_json_keys_are_accepted() {
    let (env, problems) = parse(&[
        ("ARBITRIUM_SOMETHING_NEW", "whatever"),
        ("ARBITRIUM_PORT_GAME_COLOR", "blue"),
        (
            PORTS_MAPPING,
            r#"{"ports":{"game":{"internal":1,"external":2,"protocol":"TCP","future":[1]}},"version":2}"#,
        ),
        (DEPLOYMENT_LOCATION, r#"{"city":"Paris","planet":"Earth"}"#),
    ]);
    assert_eq!(problems, []);
    assert_eq!(
        env.ports["game"].name, "game",
        "the map key names a port without a name"
    );
    assert_eq!(env.location.unwrap().city.as_deref(), Some("Paris"));
}

#[test]
fn tags_accept_json_comma_separated_and_empty() {
    for (value, expected) in [
        (r#"["a","b c"]"#, vec!["a", "b c"]),
        ("a, b ,,c", vec!["a", "b", "c"]),
        ("", vec![]),
        ("[]", vec![]),
    ] {
        let (env, problems) = parse(&[(DEPLOYMENT_TAGS, value)]);
        assert_eq!(problems, [], "{value}");
        assert_eq!(env.tags, expected, "{value}");
    }
}

/// Each malformed value: the one problem names the variable, quotes the value and says what
/// was expected (the `expected` column is a piece of that text).
#[test]
fn every_malformed_variable_is_named_with_its_value() {
    let table: &[(&str, &str, &str)] = &[
        (REQUEST_ID, "", "not an empty value"),
        (REQUEST_ID, "   ", "not an empty value"),
        (HOST_ID, "", "not an empty value"),
        (PUBLIC_IP, "not-an-ip", "an IP address"),
        (PUBLIC_IP, "300.1.1.1", "an IP address"),
        (PUBLIC_IP, "", "an IP address"),
        (PORTS_MAPPING, "{", "a JSON object"),
        (PORTS_MAPPING, "", "not an empty value"),
        (PORTS_MAPPING, "[1,2]", "a JSON object"),
        (PORTS_MAPPING, r#"{"nope":{}}"#, "missing field `ports`"),
        (
            PORTS_MAPPING,
            r#"{"ports":{"game":{"internal":"7777","external":1}}}"#,
            "port \"game\"",
        ),
        (
            PORTS_MAPPING,
            r#"{"ports":{"game":{"internal":70000,"external":1}}}"#,
            "0..=65535",
        ),
        (
            PORTS_MAPPING,
            r#"{"ports":{"game":{"external":1}}}"#,
            "missing field `internal`",
        ),
        (DEPLOYMENT_LOCATION, "{", "a JSON object"),
        (DEPLOYMENT_LOCATION, "[1]", "a JSON object"),
        (
            DEPLOYMENT_LOCATION,
            r#"{"latitude":"north"}"#,
            "invalid type",
        ),
        (DEPLOYMENT_LOCATION, "", "not an empty value"),
        (DEPLOYMENT_TAGS, "[1,2]", "a JSON array of strings"),
        (DEPLOYMENT_TAGS, r#"["a","#, "a JSON array of strings"),
        (VCPU_UNITS, "abc", "a whole number of vCPU units"),
        (VCPU_UNITS, "-1", "a whole number of vCPU units"),
        (VCPU_UNITS, "1.5", "a whole number of vCPU units"),
        (VCPU_UNITS, "", "not an empty value"),
        (MEMORY_MB, "2GB", "a whole number of megabytes"),
        (HOST_BASE_CLOCK_FREQUENCY, "fast", "a whole number"),
        (DELETE_URL, "not a url", "an http:// or https:// URL"),
        (
            DELETE_URL,
            "ftp://api.edgegap.com/x",
            "the scheme is \"ftp\"",
        ),
        (DELETE_URL, "", "not an empty value"),
        (CONTEXT_URL, "://nowhere", "an http:// or https:// URL"),
        (BEACON_ENABLED, "yes", "true or false"),
        (BEACON_PUBLIC_IP, "beacon", "an IP address"),
        (BEACON_PORT_UDP_EXTERNAL, "65536", "a port number"),
        (BEACON_PORT_TCP_EXTERNAL, "-", "a port number"),
        ("ARBITRIUM_PORT_GAME_INTERNAL", "x", "a port number"),
        ("ARBITRIUM_PORT_GAME_PROTOCOL", " ", "a protocol"),
    ];
    for &(variable, value, expected) in table {
        let (env, problems) = parse(&[(variable, value), ("ARBITRIUM_UNRELATED", "1")]);
        let problem = problems
            .iter()
            .find(|p| p.variable == variable)
            .unwrap_or_else(|| panic!("{variable}={value:?}: no problem in {problems:?}"));
        assert!(
            problem.expected.contains(expected),
            "{variable}={value:?}: {problem}"
        );
        assert_eq!(problem.value, format!("{value:?}"), "{variable}");
        let line = problem.to_string();
        assert!(
            line.starts_with(&format!("{variable}=")) && line.contains("expected"),
            "{line}"
        );
        assert!(env.on_edgegap);
        assert_eq!(
            env.ports.len(),
            0,
            "{variable}={value:?}: a bad port is not half-used"
        );
    }
}

#[test]
fn malformed_secrets_are_reported_redacted() {
    for (variable, value) in [
        (DELETE_TOKEN, ""),
        (DELETE_TOKEN, "abc\ndef-secret"),
        (CONTEXT_TOKEN, " "),
    ] {
        let (env, problems) = parse(&[(variable, value)]);
        assert_eq!(problems.len(), 1, "{variable}");
        assert_eq!(problems[0].variable, variable);
        assert_eq!(problems[0].value, "<redacted>");
        assert!(!problems[0].to_string().contains("def-secret"));
        assert!(env.delete_token.is_none() && env.context_token.is_none());
    }
}

#[test]
fn all_bad_variables_are_reported_together_and_the_rest_is_kept() {
    let (env, problems) = parse(&[
        (REQUEST_ID, "c0653765de3b"),
        (PUBLIC_IP, "x"),
        (VCPU_UNITS, "y"),
        (PORTS_MAPPING, "{"),
        (DELETE_URL, "z"),
        (MEMORY_MB, "4096"),
    ]);
    let mut named: Vec<&str> = problems.iter().map(|p| p.variable.as_str()).collect();
    named.sort_unstable();
    let mut expected = [PUBLIC_IP, PORTS_MAPPING, VCPU_UNITS, DELETE_URL];
    expected.sort_unstable();
    assert_eq!(named, expected, "{problems:?}");
    assert_eq!(env.request_id.as_deref(), Some("c0653765de3b"));
    assert_eq!(env.memory_mb, Some(4096));
}

#[test]
fn per_port_variables_are_cross_checked_with_the_mapping() {
    let (env, problems) = parse(&[
        (PORTS_MAPPING, MAPPING),
        ("ARBITRIUM_PORT_GAMEPORT_INTERNAL", "7778"),
        ("ARBITRIUM_PORT_GAMEPORT_EXTERNAL", "31669"),
        ("ARBITRIUM_PORT_WEB_SOCKET_PROTOCOL", "UDP"),
    ]);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].variable, "ARBITRIUM_PORT_GAMEPORT_INTERNAL");
    assert!(problems[0]
        .expected
        .contains("7777, as ARBITRIUM_PORTS_MAPPING gives for port \"gameport\""));
    assert_eq!(problems[1].variable, "ARBITRIUM_PORT_WEB_SOCKET_PROTOCOL");
    assert_eq!(env.ports["gameport"].internal, 7777, "the mapping wins");
}

#[test]
fn without_a_mapping_ports_come_from_the_per_port_variables() {
    let (env, problems) = parse(&[
        (PORTS_MAPPING, "not json"),
        ("ARBITRIUM_PORT_GAMEPORT_INTERNAL", "7777"),
        ("ARBITRIUM_PORT_GAMEPORT_EXTERNAL", "31669"),
        ("ARBITRIUM_PORT_GAMEPORT_PROTOCOL", "UDP"),
        ("ARBITRIUM_PORT_HALF_INTERNAL", "9000"),
    ]);
    let named: Vec<&str> = problems.iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(named, [PORTS_MAPPING, "ARBITRIUM_PORT_HALF_EXTERNAL"]);
    assert_eq!(env.ports.len(), 1);
    let game = &env.ports["gameport"];
    assert_eq!(
        (game.internal, game.external, game.protocol.as_str()),
        (7777, 31669, "UDP")
    );
}

#[test]
fn long_values_are_cut_in_reports() {
    let long = format!("[{}", "9".repeat(5000));
    let (_, problems) = parse(&[(DEPLOYMENT_TAGS, &long)]);
    assert!(
        problems[0].value.len() < 300 && problems[0].value.contains("(5001 bytes)"),
        "{}",
        problems[0].value
    );
}

#[test]
fn tcp_ports_are_the_ones_a_readiness_check_can_probe() {
    use edgegap_agent::platform::{build_client, Platform, RetryPolicy};
    let (env, problems) = parse(&full());
    let client = build_client(&Default::default()).unwrap();
    let platform = Platform::new(env, problems, client, RetryPolicy::default());
    // gameport is UDP; web-socket (WS) runs over TCP.
    assert_eq!(platform.tcp_ports(), [8080]);
}

#[test]
fn the_deployment_view_has_join_addresses_and_no_secret() {
    let (env, _) = parse(&full());
    let deployment = Deployment::from_env(&env);
    let json = serde_json::to_value(&deployment).unwrap();
    assert_eq!(json["request_id"], "c0653765de3b");
    assert_eq!(json["public_ip"], "100.10.0.85");
    assert_eq!(json["fqdn"], serde_json::Value::Null);
    assert_eq!(json["host_id"], "alpha-north-america-95fab093");
    assert_eq!(json["ports"][0]["name"], "gameport");
    assert_eq!(json["ports"][0]["join_address"], "100.10.0.85:31669");
    assert_eq!(json["ports"][1]["protocol"], "WS");
    assert_eq!(json["location"]["country"], "Canada");
    assert_eq!(json["tags"][1], "ranked");
    assert_eq!(json["resources"]["vcpu_units"], 1024);
    assert_eq!(json["resources"]["memory_mb"], 2048);
    let text = json.to_string();
    assert!(
        !text.contains(TOKEN) && !text.contains("context-token") && !text.contains("delete"),
        "{text}"
    );
}
