//! Apps and app versions (the Versioning part of the API): create, get, list with pagination,
//! update (a merge of the sent fields, then the whole is validated again), delete. Versions
//! keep every field they were sent; hidden env values are masked in every response.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use super::http::{ok, paginate, ApiError, Reply, Req};
use super::store::{rfc3339, App, Version};
use super::{validate, Emulator};

fn app_json(app: &App) -> Value {
    let mut fields = app.fields.clone();
    fields.entry("is_active").or_insert(Value::Bool(true));
    fields
        .entry("is_telemetry_agent_active")
        .or_insert(Value::Bool(false));
    fields
        .entry("image")
        .or_insert(Value::String(String::new()));
    fields.insert("create_time".into(), json!(rfc3339(app.create_time)));
    fields.insert("last_updated".into(), json!(rfc3339(app.last_updated)));
    Value::Object(fields)
}

fn version_json(version: &Version) -> Value {
    let mut fields = version.fields.clone();
    validate::mask_hidden(&mut fields, "envs");
    let spec = &version.spec;
    let defaults = [
        ("is_active", json!(spec.is_active)),
        (
            "termination_grace_period_seconds",
            json!(spec.termination_grace_period_seconds),
        ),
        ("max_duration", json!(spec.max_duration)),
        ("restart_policy", json!(policy_name(spec.restart_policy))),
        ("ports", json!([])),
        ("envs", json!([])),
    ];
    for (key, value) in defaults {
        fields.entry(key).or_insert(value);
    }
    fields.insert("create_time".into(), json!(rfc3339(version.create_time)));
    fields.insert("last_updated".into(), json!(rfc3339(version.last_updated)));
    Value::Object(fields)
}

fn policy_name(policy: validate::RestartPolicy) -> &'static str {
    match policy {
        validate::RestartPolicy::Always => "always",
        validate::RestartPolicy::Never => "never",
        validate::RestartPolicy::OnFailure => "on_failure",
    }
}

fn no_app(name: &str) -> ApiError {
    ApiError::not_found(format!("App {name} not found"))
}

fn no_version(app: &str, version: &str) -> ApiError {
    ApiError::not_found(format!("Version {version} of app {app} not found"))
}

pub fn create_app(emulator: &Arc<Emulator>, req: &Req) -> Reply {
    let fields = req.json_object()?;
    let name = validate::app(&fields).map_err(ApiError::bad_request)?;
    let mut store = emulator.lock();
    if store.apps.contains_key(&name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("App {name} already exists"),
        ));
    }
    let now = SystemTime::now();
    let app = App {
        fields,
        create_time: now,
        last_updated: now,
        versions: BTreeMap::new(),
    };
    let body = app_json(&app);
    store.apps.insert(name, app);
    ok(body)
}

pub fn get_app(emulator: &Arc<Emulator>, name: &str) -> Reply {
    let store = emulator.lock();
    store
        .apps
        .get(name)
        .map(app_json)
        .ok_or_else(|| no_app(name))
        .and_then(ok)
}

pub fn list_apps(emulator: &Arc<Emulator>, req: &Req) -> Reply {
    let store = emulator.lock();
    let all: Vec<Value> = store.apps.values().map(app_json).collect();
    let total = all.len();
    let (page, pagination) = paginate(req, all)?;
    ok(json!({"applications": page, "total_count": total, "pagination": pagination}))
}

pub fn update_app(emulator: &Arc<Emulator>, req: &Req, name: &str) -> Reply {
    let changes = req.json_object()?;
    let mut store = emulator.lock();
    let app = store.apps.get(name).ok_or_else(|| no_app(name))?;
    let mut merged = app.fields.clone();
    merged.extend(changes);
    let new_name = validate::app(&merged).map_err(ApiError::bad_request)?;
    if new_name != name && store.apps.contains_key(&new_name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("App {new_name} already exists"),
        ));
    }
    let mut app = store.apps.remove(name).ok_or_else(|| no_app(name))?;
    app.fields = merged;
    app.last_updated = SystemTime::now();
    let body = app_json(&app);
    store.apps.insert(new_name, app);
    ok(body)
}

pub fn delete_app(emulator: &Arc<Emulator>, name: &str) -> Reply {
    let mut store = emulator.lock();
    store.apps.remove(name).ok_or_else(|| no_app(name))?;
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

pub fn create_version(emulator: &Arc<Emulator>, req: &Req, app_name: &str) -> Reply {
    let fields = req.json_object()?;
    let mut store = emulator.lock();
    let app = store
        .apps
        .get_mut(app_name)
        .ok_or_else(|| no_app(app_name))?;
    let (name, spec) = validate::version(&fields).map_err(ApiError::bad_request)?;
    if app.versions.contains_key(&name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Version {name} of app {app_name} already exists"),
        ));
    }
    let now = SystemTime::now();
    let version = Version {
        fields,
        spec,
        create_time: now,
        last_updated: now,
    };
    let body = version_json(&version);
    app.versions.insert(name, version);
    ok(json!({"success": true, "version": body}))
}

pub fn get_version(emulator: &Arc<Emulator>, app: &str, version: &str) -> Reply {
    let store = emulator.lock();
    let found = store.apps.get(app).ok_or_else(|| no_app(app))?;
    let found = found
        .versions
        .get(version)
        .ok_or_else(|| no_version(app, version))?;
    ok(version_json(found))
}

pub fn list_versions(emulator: &Arc<Emulator>, req: &Req, app: &str) -> Reply {
    let store = emulator.lock();
    let found = store.apps.get(app).ok_or_else(|| no_app(app))?;
    let all: Vec<Value> = found.versions.values().map(version_json).collect();
    let total = all.len();
    let (page, pagination) = paginate(req, all)?;
    ok(json!({"versions": page, "total_count": total, "pagination": pagination}))
}

pub fn update_version(emulator: &Arc<Emulator>, req: &Req, app: &str, name: &str) -> Reply {
    let changes: Map<String, Value> = req.json_object()?;
    let mut store = emulator.lock();
    let found = store.apps.get_mut(app).ok_or_else(|| no_app(app))?;
    let current = found
        .versions
        .get(name)
        .ok_or_else(|| no_version(app, name))?;
    let mut merged = current.fields.clone();
    merged.extend(changes);
    let (new_name, spec) = validate::version(&merged).map_err(ApiError::bad_request)?;
    if new_name != name && found.versions.contains_key(&new_name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Version {new_name} of app {app} already exists"),
        ));
    }
    let mut version = found
        .versions
        .remove(name)
        .ok_or_else(|| no_version(app, name))?;
    version.fields = merged;
    version.spec = spec;
    version.last_updated = SystemTime::now();
    let body = version_json(&version);
    found.versions.insert(new_name, version);
    ok(json!({"success": true, "version": body}))
}

pub fn delete_version(emulator: &Arc<Emulator>, app: &str, name: &str) -> Reply {
    let mut store = emulator.lock();
    let found = store.apps.get_mut(app).ok_or_else(|| no_app(app))?;
    let version = found
        .versions
        .remove(name)
        .ok_or_else(|| no_version(app, name))?;
    ok(json!({"success": true, "version": version_json(&version)}))
}
