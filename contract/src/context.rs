//! Where the deployment runs (`ARBITRIUM_DEPLOYMENT_LOCATION`), the context document
//! (`GET $ARBITRIUM_CONTEXT_URL`), and the paths of the self-stop and context URLs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ports::PlatformPort;

/// Where the deployment runs, as `ARBITRIUM_DEPLOYMENT_LOCATION` and the status response's
/// `location` give it, e.g. `{"city":"Montreal","country":"Canada","continent":"North
/// America","administrative_division":"Quebec","timezone":"Eastern Time","latitude":45.508888,
/// "longitude":-73.561668}`. Every field is optional and unknown fields are ignored, so a
/// richer platform still parses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub city: Option<String>,
    pub country: Option<String>,
    pub continent: Option<String>,
    pub administrative_division: Option<String>,
    pub timezone: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Location {
    /// The variable's value.
    pub fn to_json(&self) -> String {
        // Plain fields always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The context document (`GET $ARBITRIUM_CONTEXT_URL`), in the shape of the platform's
/// `Deployment` model (Edgegap's v1 OpenAPI): `request_id`, `public_ip`, `status`, `ready`,
/// `whitelisting_active` and `fqdn` are always there on the platform; `ports`, `location`,
/// `tags`, `sockets`, `sockets_usage` and `is_joinable_by_session` may be. For a reader every
/// field is optional and unknown fields are ignored; a field of the wrong type makes the whole
/// document malformed. A writer leaves out the optional fields it does not know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub request_id: Option<String>,
    pub public_ip: Option<IpAddr>,
    /// The deployment's status, e.g. `Status.READY`.
    pub status: Option<String>,
    /// Whether the deployment is ready for players.
    pub ready: Option<bool>,
    /// Whether an access control list protects the deployment.
    pub whitelisting_active: Option<bool>,
    /// e.g. `c0653765de3b.pr.edgegap.net`; only the context has it.
    pub fqdn: Option<String>,
    /// Name → `PORT`, as in `ARBITRIUM_PORTS_MAPPING`.
    #[serde(default)]
    pub ports: BTreeMap<String, PlatformPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Session capacity of the deployment (session-based apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets_usage: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_joinable_by_session: Option<bool>,
}

impl Context {
    /// Parses a context document.
    pub fn from_json(body: &[u8]) -> Result<Context, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// The path of `ARBITRIUM_DELETE_URL`: `/v1/self/stop/{request_id}/{access_point_id}`, where the
/// access point is a number ("Access Point Number provided by our system", an integer in
/// Edgegap's v1 OpenAPI).
pub fn self_stop_path(request_id: &str, access_point_id: u32) -> String {
    format!("/v1/self/stop/{request_id}/{access_point_id}")
}

/// The path of `ARBITRIUM_CONTEXT_URL`: `/v1/context/{request_id}/{number}` (the form seen in
/// public code, which calls the last segment a "security number").
pub fn context_path(request_id: &str, number: u64) -> String {
    format!("/v1/context/{request_id}/{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_response_reads_as_a_context() {
        let body = br#"{"request_id":"c0653765de3b","fqdn":"c0653765de3b.pr.edgegap.net",
            "public_ip":"100.10.0.85","status":"Status.READY","ready":true,
            "whitelisting_active":false,
            "ports":{"gameport":{"name":"gameport","internal":7777,"external":31669,
            "protocol":"UDP","proxy":65002}},
            "location":{"city":"Montreal","latitude":45.508888,"elevation":12},
            "tags":["eu"]}"#;
        let context = Context::from_json(body).unwrap();
        assert_eq!(context.fqdn.as_deref(), Some("c0653765de3b.pr.edgegap.net"));
        assert_eq!(context.public_ip, Some("100.10.0.85".parse().unwrap()));
        assert_eq!(context.ports["gameport"].external, Some(31669));
        let location = context.location.unwrap();
        assert_eq!(location.city.as_deref(), Some("Montreal"));
        assert_eq!(location.country, None);
        assert_eq!(context.tags, Some(vec!["eu".to_owned()]));
        assert_eq!(context.ready, Some(true));
        assert_eq!(context.status.as_deref(), Some("Status.READY"));
        assert!(Context::from_json(br#"{"public_ip": 7}"#).is_err());
    }

    #[test]
    fn a_context_round_trips() {
        let context = Context {
            request_id: Some("c0653765de3b".into()),
            fqdn: Some("localhost".into()),
            public_ip: Some("127.0.0.1".parse().unwrap()),
            status: Some("Status.READY".into()),
            ready: Some(true),
            whitelisting_active: Some(false),
            ports: BTreeMap::new(),
            location: Some(Location {
                city: Some("Localhost".into()),
                latitude: Some(0.0),
                ..Location::default()
            }),
            tags: Some(vec![]),
            sockets: Some(4),
            ..Context::default()
        };
        let json = serde_json::to_vec(&context).unwrap();
        assert_eq!(Context::from_json(&json).unwrap(), context);
    }

    #[test]
    fn url_paths_have_the_documented_form() {
        assert_eq!(
            self_stop_path("c0653765de3b", 660),
            "/v1/self/stop/c0653765de3b/660"
        );
        assert_eq!(
            context_path("c0653765de3b", 7),
            "/v1/context/c0653765de3b/7"
        );
    }
}
