//! What the contract crate writes (the emulator's side: `InjectedEnv`, the context document),
//! the agent's parser reads back without a single problem and with every value intact: ports
//! whose names need the `<NAME>` rule, every protocol, tags that need the JSON encoding.
//! `tests/platform_emulator.rs` checks the same of the real emulator's environment.

use std::net::IpAddr;

use edgegap_agent::platform::{Context, Deployment, PlatformEnv};
use edgegap_contract::{InjectedEnv, Location, PlatformPort, PortsMapping};

fn port(name: &str, internal: u16, external: u16, protocol: &str) -> PlatformPort {
    PlatformPort {
        name: Some(name.to_owned()),
        internal: Some(internal),
        external: Some(external),
        protocol: Some(protocol.to_owned()),
        tls_upgrade: Some(false),
        link: Some(format!("c0653765de3b.pr.edgegap.net:{external}")),
        proxy: Some(65000 + external % 100),
    }
}

fn injected(tags: &[&str]) -> InjectedEnv {
    InjectedEnv {
        request_id: "c0653765de3b".to_owned(),
        public_ip: IpAddr::from([100, 10, 0, 85]),
        host_id: "alpha-north-america-95fab093".to_owned(),
        ports: PortsMapping::new([
            port("gameport", 7777, 31669, "UDP"),
            port("web-socket", 8080, 31670, "WS"),
            port("Voice_2", 9000, 31671, "TCP/UDP"),
        ]),
        location: Location {
            city: Some("Montreal".to_owned()),
            country: Some("Canada".to_owned()),
            continent: Some("North America".to_owned()),
            administrative_division: Some("Quebec".to_owned()),
            timezone: Some("Eastern Time".to_owned()),
            latitude: Some(45.508888),
            longitude: Some(-73.561668),
        },
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        vcpu_units: 1024,
        memory_mb: 2048,
        delete_url: "https://api.edgegap.com/v1/self/stop/c0653765de3b/660".to_owned(),
        delete_token: "delete-token-value".to_owned(),
        context_url: "https://api.edgegap.com/v1/context/c0653765de3b/7".to_owned(),
        context_token: "context-token-value".to_owned(),
    }
}

#[test]
fn the_injected_environment_parses_without_a_problem() {
    for tags in [&["eu", "ranked"][..], &[], &["a,b", " padded "]] {
        let written = injected(tags);
        let (env, problems) = PlatformEnv::from_iter(written.variables());
        assert_eq!(problems, [], "tags {tags:?}");
        assert!(env.on_edgegap);
        assert_eq!(env.request_id.as_deref(), Some("c0653765de3b"));
        assert_eq!(env.host_id.as_deref(), Some("alpha-north-america-95fab093"));
        assert_eq!(env.public_ip, Some(written.public_ip));
        assert_eq!(env.ports.len(), 3);
        for (name, port) in &written.ports.ports {
            let parsed = &env.ports[name];
            assert_eq!(Some(parsed.internal), port.internal, "{name}");
            assert_eq!(Some(parsed.external), port.external, "{name}");
            assert_eq!(Some(&parsed.protocol), port.protocol.as_ref(), "{name}");
            assert_eq!(parsed.link, port.link, "{name}");
        }
        assert_eq!(env.location.as_ref(), Some(&written.location));
        assert_eq!(env.tags, written.tags, "tags {tags:?}");
        assert_eq!((env.vcpu_units, env.memory_mb), (Some(1024), Some(2048)));
        assert_eq!(
            env.delete_url.map(|u| u.to_string()),
            Some(written.delete_url.clone())
        );
        assert_eq!(
            env.delete_token.map(|t| t.expose().to_owned()),
            Some(written.delete_token.clone())
        );
        assert_eq!(
            env.context_url.map(|u| u.to_string()),
            Some(written.context_url.clone())
        );
        assert_eq!(
            env.context_token.map(|t| t.expose().to_owned()),
            Some(written.context_token.clone())
        );
    }
}

#[test]
fn without_the_mapping_the_flattened_port_variables_alone_give_every_port() {
    let variables: Vec<(String, String)> = injected(&[])
        .variables()
        .into_iter()
        .filter(|(name, _)| name != "ARBITRIUM_PORTS_MAPPING")
        .collect();
    let (env, problems) = PlatformEnv::from_iter(variables);
    assert_eq!(problems, []);
    // Names come back upper-cased, `-` as `_`, then lower-cased: the rule is one-way.
    let names: Vec<&str> = env.ports.keys().map(String::as_str).collect();
    assert_eq!(names, ["gameport", "voice_2", "web_socket"]);
    assert_eq!(env.ports["web_socket"].external, 31670);
}

#[test]
fn the_context_document_written_by_the_contract_merges_into_the_deployment() {
    let written = injected(&["eu"]);
    let context = Context {
        request_id: Some(written.request_id.clone()),
        fqdn: Some("c0653765de3b.pr.edgegap.net".to_owned()),
        public_ip: Some(written.public_ip),
        ports: written.ports.ports.clone(),
        location: Some(written.location.clone()),
        tags: Some(written.tags.clone()),
        status: Some("Status.READY".to_owned()),
        ready: Some(true),
        whitelisting_active: Some(false),
        ..Context::default()
    };
    let body = serde_json::to_vec(&context).unwrap();
    let parsed = Context::from_json(&body).unwrap();
    assert_eq!(parsed, context);

    // The context alone (no environment) gives the whole deployment, join addresses included.
    let mut deployment = Deployment::from_env(&PlatformEnv::default());
    deployment.merge_context(&parsed);
    assert_eq!(
        deployment.fqdn.as_deref(),
        Some("c0653765de3b.pr.edgegap.net")
    );
    assert_eq!(deployment.ports.len(), 3);
    let game = deployment
        .ports
        .iter()
        .find(|p| p.name == "gameport")
        .unwrap();
    assert_eq!(game.join_address.as_deref(), Some("100.10.0.85:31669"));
}
