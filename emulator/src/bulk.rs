//! `POST /v1/deployments/bulk-stop`: the documented filter objects (`field`, `values`,
//! `filter_type`) over the active deployments; every match gets the stop sequence. Fields and
//! filter types beyond the documented object's names are the emulator's choice (see the route
//! table in `mod.rs`).

use std::sync::Arc;

use serde_json::{json, Value};

use super::deployments::request_stop;
use super::http::{ok, ApiError, Reply, Req};
use super::store::Deployment;
use super::validate::required_str;
use super::Emulator;

struct Filter {
    field: String,
    values: Vec<String>,
    filter_type: String,
}

fn filters(req: &Req) -> Result<Vec<Filter>, ApiError> {
    let body = req.json_object()?;
    let Some(Value::Array(items)) = body.get("filters") else {
        return Err(ApiError::bad_request(
            "filters: required, a list of {field, values, filter_type}",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("filters: must not be empty"));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = required_str(item.get("field"), "field")
            .map_err(|e| ApiError::bad_request(format!("filters[{i}].{e}")))?;
        if !["tags", "app_name", "app_version", "request_id"].contains(&field.as_str()) {
            return Err(ApiError::bad_request(format!(
                "filters[{i}].field: must be tags, app_name, app_version or request_id, got {field:?}"
            )));
        }
        let values = item
            .get("values")
            .and_then(Value::as_array)
            .and_then(|v| {
                v.iter()
                    .map(|s| s.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                ApiError::bad_request(format!("filters[{i}].values: required, a list of strings"))
            })?;
        let filter_type = item
            .get("filter_type")
            .and_then(Value::as_str)
            .unwrap_or("any")
            .to_owned();
        if !["any", "all", "not"].contains(&filter_type.as_str()) {
            return Err(ApiError::bad_request(format!(
                "filters[{i}].filter_type: must be any, all or not, got {filter_type:?}"
            )));
        }
        out.push(Filter {
            field,
            values,
            filter_type,
        });
    }
    Ok(out)
}

fn matches(found: &Deployment, filter: &Filter) -> bool {
    let have: Vec<&str> = match filter.field.as_str() {
        "tags" => found.tags.iter().map(String::as_str).collect(),
        "app_name" => vec![found.app_name.as_str()],
        "app_version" => vec![found.version_name.as_str()],
        _ => vec![found.request_id.as_str()],
    };
    let hit = |v: &String| have.contains(&v.as_str());
    match filter.filter_type.as_str() {
        "all" => filter.values.iter().all(hit),
        "not" => !filter.values.iter().any(hit),
        _ => filter.values.iter().any(hit),
    }
}

pub fn bulk_stop(emulator: &Arc<Emulator>, req: &Req) -> Reply {
    let filters = filters(req)?;
    let mut store = emulator.lock();
    let mut processable = Vec::new();
    for found in store.deployments.values_mut() {
        if found.status.is_final() || !filters.iter().all(|f| matches(found, f)) {
            continue;
        }
        if request_stop(found, "bulk_stop").is_ok() {
            found.stop_calls += 1;
            processable.push(json!({"request_id": found.request_id}));
        }
    }
    ok(json!({"processable": processable, "unprocessable": []}))
}
