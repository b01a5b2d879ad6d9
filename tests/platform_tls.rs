//! HTTPS to the platform: rustls with the embedded roots plus `--ca-file`, against a fake
//! platform serving a certificate signed by a test CA.

#[path = "support/fake_dns.rs"]
mod fake_dns;
#[path = "support/fake_platform.rs"]
mod fake_platform;

use std::path::PathBuf;

use edgegap_agent::platform::client::{
    build_client, build_client_with_resolver, ClientError, HttpOptions,
};
use edgegap_agent::platform::{RetryPolicy, Secret, SelfStop, SelfStopOutcome, SelfStopTarget};
use fake_platform::FakePlatform;
use fake_platform::FixedJitter;

fn support(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

fn with_ca() -> HttpOptions {
    HttpOptions {
        ca_file: Some(support("test_ca.pem")),
        ..HttpOptions::default()
    }
}

async fn stop_once(client: edgegap_agent::platform::HttpClient, url: &str) -> SelfStopOutcome {
    let target = SelfStopTarget {
        url: url.parse().unwrap(),
        token: Secret::new("tls-token"),
    };
    let policy = RetryPolicy::new(
        1,
        std::time::Duration::from_millis(1),
        std::time::Duration::from_millis(1),
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    SelfStop::with_jitter(Ok(target), client, policy, Box::new(FixedJitter(0)))
        .stop()
        .await
}

#[tokio::test]
async fn https_with_the_extra_ca_works_by_ip_and_by_name() {
    let fake = FakePlatform::start_tls().await;
    let by_ip = stop_once(
        build_client(&with_ca()).unwrap(),
        &fake.url("/v1/self/stop/a/b"),
    )
    .await;
    assert_eq!(
        by_ip,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 1
        }
    );

    let resolver = fake_dns::resolver("tls-by-name", "127.0.0.1 platform.test\n", None, 53);
    let client = build_client_with_resolver(&with_ca(), resolver).unwrap();
    let url = format!(
        "https://platform.test:{}/v1/self/stop/a/b",
        fake.addr.port()
    );
    assert_eq!(
        stop_once(client, &url).await,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 1
        }
    );
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(
        fake.requests()[1].header("authorization"),
        Some(&b"tls-token"[..])
    );
}

#[tokio::test]
async fn without_the_extra_ca_the_certificate_is_refused() {
    let fake = FakePlatform::start_tls().await;
    let outcome = stop_once(
        build_client(&HttpOptions::default()).unwrap(),
        &fake.url("/x"),
    )
    .await;
    let SelfStopOutcome::GaveUp { last_error, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        last_error.to_lowercase().contains("certificate"),
        "{last_error}"
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused_naming_the_file() {
    let options = HttpOptions {
        ca_file: Some(support("fake_platform.rs")),
        ..HttpOptions::default()
    };
    let error = build_client(&options).unwrap_err();
    assert!(matches!(error, ClientError::BadCa { .. }), "{error:?}");
    assert!(error.to_string().contains("fake_platform.rs"), "{error}");
}
