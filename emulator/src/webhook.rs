//! Webhooks (`webhook_on_ready`, `webhook_on_error`, `webhook_on_terminated`): the status
//! response POSTed as JSON, fire and forget, with a timeout; failures are logged (the URL's
//! host only, never a query that might hold a secret). Plain `http://` only: locally, the
//! receiver is a test server or the studio's backend on this machine.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::say;

const TIMEOUT: Duration = Duration::from_secs(5);

/// POSTs `body` to `url` in the background.
pub fn fire(url: String, body: Value) {
    tokio::spawn(async move {
        let outcome = tokio::time::timeout(TIMEOUT, post(&url, body)).await;
        let host = url
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned));
        let host = host.unwrap_or_else(|| "an unparsable URL".to_owned());
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => say(&format!("webhook to {host} failed: {error}")),
            Err(_) => say(&format!("webhook to {host} timed out after {TIMEOUT:?}")),
        }
    });
}

async fn post(url: &str, body: Value) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// webhooks are supported by the emulator".to_owned());
    }
    let host = uri.host().ok_or("the URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), |a| a.as_str().to_owned());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("no response: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}
