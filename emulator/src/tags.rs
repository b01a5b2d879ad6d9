//! Deployment tags: list, create (409 when present), get and delete (404 when absent). They
//! are the deployment's `tags`, as given at deploy time, shown in the status response and
//! matched by bulk stop.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value};

use super::deployments::no_deployment;
use super::http::{ok, ApiError, Reply, Req};
use super::validate::required_str;
use super::Emulator;

pub fn list_tags(emulator: &Arc<Emulator>, id: &str) -> Reply {
    let store = emulator.lock();
    let found = store.deployments.get(id).ok_or_else(|| no_deployment(id))?;
    let tags: Vec<Value> = found.tags.iter().map(|t| json!({"name": t})).collect();
    ok(json!({"tags": tags}))
}

pub fn create_tag(emulator: &Arc<Emulator>, req: &Req, id: &str) -> Reply {
    let body = req.json_object()?;
    let name = required_str(body.get("name"), "name").map_err(ApiError::bad_request)?;
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(id)
        .ok_or_else(|| no_deployment(id))?;
    if found.tags.contains(&name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Tag {name} already exists on {id}"),
        ));
    }
    found.tags.push(name.clone());
    Ok((StatusCode::CREATED, json!({"name": name})))
}

pub fn get_tag(emulator: &Arc<Emulator>, id: &str, tag: &str) -> Reply {
    let store = emulator.lock();
    let found = store.deployments.get(id).ok_or_else(|| no_deployment(id))?;
    if !found.tags.iter().any(|t| t == tag) {
        return Err(ApiError::not_found(format!("Tag {tag} not found on {id}")));
    }
    ok(json!({"name": tag}))
}

pub fn delete_tag(emulator: &Arc<Emulator>, id: &str, tag: &str) -> Reply {
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(id)
        .ok_or_else(|| no_deployment(id))?;
    let before = found.tags.len();
    found.tags.retain(|t| t != tag);
    if found.tags.len() == before {
        return Err(ApiError::not_found(format!("Tag {tag} not found on {id}")));
    }
    Ok((StatusCode::NO_CONTENT, Value::Null))
}
