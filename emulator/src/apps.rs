//! Apps and app versions (the Versioning part of the API): create, get, list with pagination,
//! update (a merge of the sent fields, then the whole is validated again), delete. Bodies
//! hold the documented fields only; hidden env values and registry tokens are never shown.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::clock;
use super::http::{empty, object, ok, paginate, query, Answer, ApiError, Emu, PageQuery};
use super::store::{App, Version};
use super::validate;

fn app_json(app: &App) -> Value {
    json!({
        "name": app.name,
        "is_active": app.is_active,
        "image": app.image,
        "create_time": clock::platform(app.create_time),
        "last_updated": clock::platform(app.last_updated),
    })
}

fn version_json(version: &Version) -> Value {
    let mut shown = version.shown.clone();
    shown.insert(
        "create_time".into(),
        json!(clock::platform(version.create_time)),
    );
    shown.insert(
        "last_updated".into(),
        json!(clock::platform(version.last_updated)),
    );
    Value::Object(shown)
}

pub(super) fn no_app(name: &str) -> ApiError {
    ApiError::not_found(format!("App {name} not found"))
}

pub(super) fn no_version(app: &str, version: &str) -> ApiError {
    ApiError::not_found(format!("Version {version} of app {app} not found"))
}

pub async fn create_app(State(emulator): Emu, body: Bytes) -> Answer {
    let fields = object(&body)?;
    let (name, is_active, image) = validate::app(&fields).map_err(ApiError::bad_request)?;
    let mut store = emulator.lock();
    if store.apps.contains_key(&name) {
        return Err(ApiError::conflict(format!("App {name} already exists")));
    }
    let now = SystemTime::now();
    let app = App {
        name: name.clone(),
        is_active,
        image,
        create_time: now,
        last_updated: now,
        versions: BTreeMap::new(),
    };
    let body = app_json(&app);
    store.apps.insert(name, app);
    ok(body)
}

pub async fn get_app(State(emulator): Emu, Path(name): Path<String>) -> Answer {
    let store = emulator.lock();
    let app = store.apps.get(&name).ok_or_else(|| no_app(&name))?;
    ok(app_json(app))
}

pub async fn list_apps(
    State(emulator): Emu,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let store = emulator.lock();
    let all: Vec<Value> = store.apps.values().map(app_json).collect();
    let total = all.len();
    let (page, pagination) = paginate(&q, all)?;
    ok(json!({"applications": page, "total_count": total, "pagination": pagination}))
}

pub async fn update_app(State(emulator): Emu, Path(name): Path<String>, body: Bytes) -> Answer {
    let changes = object(&body)?;
    let mut store = emulator.lock();
    let app = store.apps.get(&name).ok_or_else(|| no_app(&name))?;
    let mut merged = Map::new();
    merged.insert("name".into(), json!(app.name));
    merged.insert("is_active".into(), json!(app.is_active));
    merged.insert("image".into(), json!(app.image));
    merged.extend(changes);
    let (new_name, is_active, image) = validate::app(&merged).map_err(ApiError::bad_request)?;
    if new_name != name && store.apps.contains_key(&new_name) {
        return Err(ApiError::conflict(format!("App {new_name} already exists")));
    }
    let mut app = store.apps.remove(&name).ok_or_else(|| no_app(&name))?;
    app.name = new_name.clone();
    app.is_active = is_active;
    app.image = image;
    app.last_updated = SystemTime::now();
    let body = app_json(&app);
    store.apps.insert(new_name, app);
    ok(body)
}

/// 200 with no body, as documented ("Success", no content).
pub async fn delete_app(State(emulator): Emu, Path(name): Path<String>) -> Answer {
    let mut store = emulator.lock();
    store.apps.remove(&name).ok_or_else(|| no_app(&name))?;
    empty(StatusCode::OK)
}

pub async fn create_version(
    State(emulator): Emu,
    Path(app_name): Path<String>,
    body: Bytes,
) -> Answer {
    let sent = object(&body)?;
    let mut store = emulator.lock();
    let app = store
        .apps
        .get_mut(&app_name)
        .ok_or_else(|| no_app(&app_name))?;
    let (name, shown, spec) = validate::version(&sent).map_err(ApiError::bad_request)?;
    if app.versions.contains_key(&name) {
        return Err(ApiError::conflict(format!(
            "Version {name} of app {app_name} already exists"
        )));
    }
    let now = SystemTime::now();
    let version = Version {
        sent,
        shown,
        spec,
        create_time: now,
        last_updated: now,
    };
    let body = version_json(&version);
    app.versions.insert(name, version);
    ok(json!({"success": true, "version": body}))
}

pub async fn get_version(
    State(emulator): Emu,
    Path((app, version)): Path<(String, String)>,
) -> Answer {
    let store = emulator.lock();
    let found = store.apps.get(&app).ok_or_else(|| no_app(&app))?;
    let found = found
        .versions
        .get(&version)
        .ok_or_else(|| no_version(&app, &version))?;
    ok(version_json(found))
}

pub async fn list_versions(
    State(emulator): Emu,
    Path(app): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let store = emulator.lock();
    let found = store.apps.get(&app).ok_or_else(|| no_app(&app))?;
    let all: Vec<Value> = found.versions.values().map(version_json).collect();
    let total = all.len();
    let (page, pagination) = paginate(&q, all)?;
    ok(json!({"versions": page, "total_count": total, "pagination": pagination}))
}

pub async fn update_version(
    State(emulator): Emu,
    Path((app, name)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let changes = object(&body)?;
    let mut store = emulator.lock();
    let found = store.apps.get_mut(&app).ok_or_else(|| no_app(&app))?;
    let current = found
        .versions
        .get(&name)
        .ok_or_else(|| no_version(&app, &name))?;
    let merged = validate::merge_version(&current.sent, changes);
    let (new_name, shown, spec) = validate::version(&merged).map_err(ApiError::bad_request)?;
    if new_name != name && found.versions.contains_key(&new_name) {
        // A version update documents no 409: the clash is a bad request.
        return Err(ApiError::bad_request(format!(
            "name: version {new_name} of app {app} already exists"
        )));
    }
    let mut version = found
        .versions
        .remove(&name)
        .ok_or_else(|| no_version(&app, &name))?;
    version.sent = merged;
    version.shown = shown;
    version.spec = spec;
    version.last_updated = SystemTime::now();
    let body = version_json(&version);
    found.versions.insert(new_name, version);
    ok(json!({"success": true, "version": body}))
}

pub async fn delete_version(
    State(emulator): Emu,
    Path((app, name)): Path<(String, String)>,
) -> Answer {
    let mut store = emulator.lock();
    let found = store.apps.get_mut(&app).ok_or_else(|| no_app(&app))?;
    found
        .versions
        .remove(&name)
        .ok_or_else(|| no_version(&app, &name))?;
    ok(json!({"success": true, "message": format!("Version {name} of app {app} deleted")}))
}
