//! Deployment tags: list (`{tags, count, pagination}`), create (200; 409 when present), get,
//! update (rename; 409 onto an existing name) and delete (204; 404 when absent). Names are
//! 1 to 20 characters, as documented. They are the deployment's `tags`, shown in the status
//! response and matched by bulk stop and the list's `query`; as on the platform, a running
//! process's `ARBITRIUM_DEPLOYMENT_TAGS` does not change.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::clock;
use super::deployments::no_deployment;
use super::fields::required_str;
use super::http::{empty, object, ok, paginate, query, Answer, ApiError, Emu, PageQuery};
use super::store::DeploymentTag;

/// The documented longest tag name.
pub const TAG_MAX_CHARS: usize = 20;

fn tag_json(tag: &DeploymentTag) -> Value {
    json!({
        "name": tag.name,
        "create_time": clock::platform(tag.create_time),
        "last_updated": clock::platform(tag.last_updated),
    })
}

fn no_tag(id: &str, tag: &str) -> ApiError {
    ApiError::not_found(format!("Tag {tag} not found on {id}"))
}

fn name(body: &Bytes) -> Result<String, ApiError> {
    let body = object(body)?;
    let name = required_str(body.get("name"), "name").map_err(ApiError::bad_request)?;
    let chars = name.chars().count();
    if chars > TAG_MAX_CHARS {
        return Err(ApiError::bad_request(format!(
            "name: at most {TAG_MAX_CHARS} characters, got {chars} ({name:?})"
        )));
    }
    Ok(name)
}

pub async fn list_tags(
    State(emulator): Emu,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let store = emulator.lock();
    let found = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    let all: Vec<Value> = found.tags.iter().map(tag_json).collect();
    let count = all.len();
    let (page, pagination) = paginate(&q, all)?;
    ok(json!({"tags": page, "count": count, "pagination": pagination}))
}

pub async fn create_tag(State(emulator): Emu, Path(id): Path<String>, body: Bytes) -> Answer {
    let name = name(&body)?;
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(&id)
        .ok_or_else(|| no_deployment(&id))?;
    if found.tags.iter().any(|t| t.name == name) {
        return Err(ApiError::conflict(format!(
            "Tag {name} already exists on {id}"
        )));
    }
    let tag = DeploymentTag::new(name);
    let body = tag_json(&tag);
    found.tags.push(tag);
    ok(body)
}

pub async fn get_tag(State(emulator): Emu, Path((id, tag)): Path<(String, String)>) -> Answer {
    let store = emulator.lock();
    let found = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    let tag = found
        .tags
        .iter()
        .find(|t| t.name == tag)
        .ok_or_else(|| no_tag(&id, &tag))?;
    ok(tag_json(tag))
}

pub async fn update_tag(
    State(emulator): Emu,
    Path((id, tag)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let new_name = name(&body)?;
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(&id)
        .ok_or_else(|| no_deployment(&id))?;
    if new_name != tag && found.tags.iter().any(|t| t.name == new_name) {
        return Err(ApiError::conflict(format!(
            "Tag {new_name} already exists on {id}"
        )));
    }
    let existing = found
        .tags
        .iter_mut()
        .find(|t| t.name == tag)
        .ok_or_else(|| no_tag(&id, &tag))?;
    existing.name = new_name;
    existing.last_updated = SystemTime::now();
    ok(tag_json(existing))
}

pub async fn delete_tag(State(emulator): Emu, Path((id, tag)): Path<(String, String)>) -> Answer {
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(&id)
        .ok_or_else(|| no_deployment(&id))?;
    let before = found.tags.len();
    found.tags.retain(|t| t.name != tag);
    if found.tags.len() == before {
        return Err(no_tag(&id, &tag));
    }
    empty(StatusCode::NO_CONTENT)
}
