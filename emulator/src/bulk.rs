//! `POST /v1/deployments/bulk-stop`: the documented filters `{field, values, filter_type}`
//! with `field` one of `request_id` and `deployment_tags` and `filter_type` one of `any`,
//! `all`, `not` (Edgegap's v1 OpenAPI), all of them to hold, over the active deployments;
//! every match gets the stop (or the deferred stop before READY). Answers 202
//! `{processable: [{request_id}]}`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::deployments::request_stop;
use super::fields::{required_str, string_list};
use super::http::{object, reply, Answer, ApiError, Emu};
use super::store::Deployment;

struct Filter {
    field: String,
    values: Vec<String>,
    filter_type: String,
}

fn filters(body: &Bytes) -> Result<Vec<Filter>, ApiError> {
    let body = object(body)?;
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
        let at = |e: String| ApiError::bad_request(format!("filters[{i}].{e}"));
        let field = required_str(item.get("field"), "field").map_err(at)?;
        if !["request_id", "deployment_tags"].contains(&field.as_str()) {
            return Err(at(format!(
                "field: must be request_id or deployment_tags, got {field:?}"
            )));
        }
        if item.get("values").is_none() {
            return Err(at("values: required, a list of strings".to_owned()));
        }
        let values = string_list(item.get("values"), "values").map_err(at)?;
        let filter_type = required_str(item.get("filter_type"), "filter_type").map_err(at)?;
        if !["any", "all", "not"].contains(&filter_type.as_str()) {
            return Err(at(format!(
                "filter_type: must be any, all or not, got {filter_type:?}"
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
    let have: Vec<String> = match filter.field.as_str() {
        "deployment_tags" => found.tag_names(),
        _ => vec![found.request_id.clone()],
    };
    let hit = |v: &String| have.contains(v);
    match filter.filter_type.as_str() {
        "all" => filter.values.iter().all(hit),
        "not" => !filter.values.iter().any(hit),
        _ => filter.values.iter().any(hit),
    }
}

pub async fn bulk_stop(State(emulator): Emu, body: Bytes) -> Answer {
    let filters = filters(&body)?;
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
    Ok(reply(
        StatusCode::ACCEPTED,
        json!({"processable": processable}),
    ))
}
