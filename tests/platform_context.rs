//! Fetching the deployment's context from a fake platform and merging it with the
//! environment (the environment wins; the context fills what it lacks).

#[path = "support/fake_dns.rs"]
mod fake_dns;
#[path = "support/fake_platform.rs"]
mod fake_platform;
#[path = "support/log_capture.rs"]
mod log_capture;

use std::net::IpAddr;

use edgegap_agent::platform::client::{build_client, build_client_with_resolver, HttpOptions};
use edgegap_agent::platform::env::{
    CONTEXT_TOKEN, CONTEXT_URL, PORTS_MAPPING, PUBLIC_IP, REQUEST_ID,
};
use edgegap_agent::platform::{fetch_context, ContextError, Deployment, PlatformEnv, RetryPolicy};
use fake_platform::{FakePlatform, FixedJitter, Reply};
use log_capture::{assert_token_absent, LogCapture};

const TOKEN: &str = "ctx-token-Zx9-never-logged";

const CONTEXT: &str = r#"{
  "request_id": "c0653765de3b",
  "fqdn": "c0653765de3b.pr.edgegap.net",
  "public_ip": "203.0.113.9",
  "status": "Status.READY",
  "ports": {
    "gameport": {"name": "gameport", "internal": 7777, "external": 31669, "protocol": "UDP", "link": "c0653765de3b.pr.edgegap.net:31669"},
    "web": {"name": "web", "internal": 80, "external": 31700, "protocol": "HTTP", "tls_upgrade": true}
  },
  "location": {"city": "Paris", "country": "France"},
  "tags": ["from-context"]
}"#;

fn env(fake: &FakePlatform) -> PlatformEnv {
    let url = fake.url("/v1/context/c0653765de3b/7");
    let (env, problems) = PlatformEnv::from_iter([
        (REQUEST_ID, "c0653765de3b"),
        (PUBLIC_IP, "100.10.0.85"),
        (
            PORTS_MAPPING,
            r#"{"ports":{"gameport":{"internal":7777,"external":31669,"protocol":"UDP"}}}"#,
        ),
        (CONTEXT_URL, url.as_str()),
        (CONTEXT_TOKEN, TOKEN),
    ]);
    assert_eq!(problems, []);
    env
}

#[tokio::test(start_paused = true)]
async fn the_context_is_fetched_with_retries_and_fills_what_the_env_lacks() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.fail_times(2, 502)
        .set_default(Reply::Json(200, CONTEXT.to_owned()));
    let env = env(&fake);
    let client = build_client(&HttpOptions::default()).unwrap();
    let context = fetch_context(
        &client,
        &RetryPolicy::default(),
        &mut FixedJitter(0),
        env.context_url.as_ref(),
        env.context_token.as_ref(),
    )
    .await
    .unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2].method, "GET");
    assert_eq!(requests[2].path, "/v1/context/c0653765de3b/7");
    assert_eq!(requests[2].header("authorization"), Some(TOKEN.as_bytes()));

    let mut deployment = Deployment::from_env(&env);
    deployment.merge_context(&context);
    // The environment wins where it has a value...
    assert_eq!(deployment.public_ip, Some(IpAddr::from([100, 10, 0, 85])));
    // ...and the context fills the rest.
    assert_eq!(
        deployment.fqdn.as_deref(),
        Some("c0653765de3b.pr.edgegap.net")
    );
    assert_eq!(deployment.tags, ["from-context"]);
    assert_eq!(
        deployment.location.as_ref().unwrap().city.as_deref(),
        Some("Paris")
    );
    let names: Vec<&str> = deployment.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["gameport", "web"]);
    assert_eq!(
        deployment.ports[0].link.as_deref(),
        Some("c0653765de3b.pr.edgegap.net:31669")
    );
    assert_eq!(
        deployment.ports[1].join_address.as_deref(),
        Some("100.10.0.85:31700")
    );
    let served = serde_json::to_string(&deployment).unwrap();
    assert_token_absent(TOKEN, &served);
    assert_token_absent(TOKEN, &logs.text());
    assert_token_absent(TOKEN, &format!("{env:?} {context:?}"));
}

#[tokio::test]
async fn context_failures_are_typed() {
    let fake = FakePlatform::start().await;
    let env = env(&fake);
    let client = build_client(&HttpOptions::default()).unwrap();
    let policy = RetryPolicy::default();
    let fetch = || async {
        let mut jitter = FixedJitter(0);
        fetch_context(
            &client,
            &policy,
            &mut jitter,
            env.context_url.as_ref(),
            env.context_token.as_ref(),
        )
        .await
    };
    fake.set_default(Reply::Json(200, r#"{"public_ip": 12}"#.to_owned()));
    assert!(matches!(fetch().await, Err(ContextError::Malformed(m)) if m.contains("invalid type")));
    fake.set_default(Reply::Status(403));
    assert_eq!(fetch().await, Err(ContextError::Rejected { status: 403 }));
    let none = fetch_context(
        &client,
        &policy,
        &mut FixedJitter(0),
        None,
        env.context_token.as_ref(),
    )
    .await;
    assert_eq!(none, Err(ContextError::NotConfigured));
}

#[tokio::test]
async fn the_platform_serves_the_merged_deployment_or_falls_back_to_the_env() {
    use edgegap_agent::config::{PlatformOptions, SelfStopOptions};
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::Json(200, CONTEXT.to_owned()));
    let options = PlatformOptions {
        self_stop: SelfStopOptions {
            self_stop_max_attempts: Some(1),
            self_stop_deadline: std::time::Duration::from_secs(5),
            self_stop_attempt_timeout: std::time::Duration::from_secs(5),
            self_stop_initial_backoff: std::time::Duration::from_millis(1),
            self_stop_max_backoff: std::time::Duration::from_millis(1),
        },
        http: HttpOptions::default(),
    };
    let platform = options.platform(env(&fake), vec![]).unwrap();
    assert_eq!(platform.tcp_ports(), Vec::<u16>::new(), "gameport is UDP");
    let merged = platform.fetch_deployment().await;
    assert_eq!(merged.fqdn.as_deref(), Some("c0653765de3b.pr.edgegap.net"));

    fake.set_default(Reply::Status(401));
    let fallback = platform.fetch_deployment().await;
    assert_eq!(fallback, platform.deployment);
    assert!(logs.text().contains("status 401"), "{}", logs.text());
    assert_token_absent(TOKEN, &logs.text());
    assert_token_absent(TOKEN, &format!("{platform:?}"));
}

/// Names go through the agent's own resolver (no NSS), here pinned to the fake.
#[tokio::test]
async fn host_names_resolve_through_the_agents_resolver() {
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::Json(200, CONTEXT.to_owned()));
    let resolver = fake_dns::resolver("context-by-name", "127.0.0.1 platform.test\n", None, 53);
    let client = build_client_with_resolver(&HttpOptions::default(), resolver).unwrap();
    let url = format!("http://platform.test:{}/v1/context/x/1", fake.addr.port())
        .parse()
        .unwrap();
    let token = edgegap_agent::platform::Secret::new(TOKEN);
    let context = fetch_context(
        &client,
        &RetryPolicy::default(),
        &mut FixedJitter(0),
        Some(&url),
        Some(&token),
    )
    .await
    .unwrap();
    assert_eq!(context.fqdn.as_deref(), Some("c0653765de3b.pr.edgegap.net"));
    assert_eq!(
        fake.requests()[0].header("host"),
        Some(format!("platform.test:{}", fake.addr.port()).as_bytes())
    );
}
