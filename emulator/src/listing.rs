//! `GET /v1/deployments` (active deployments, filtered and sorted by the documented `query`,
//! paginated) and `GET /v1/locations` (the local location, honouring `app`/`version`
//! capacity, `type` and `tags`).
//!
//! `query` is JSON, as in the v1 OpenAPI's example and Edgegap's filtering guide:
//! `{"filters": [{"field": F, "operator": OP, "value": V}], "order_by": [{"field": F,
//! "order": "asc"|"desc"}]}` with fields `status`, `application`, `version`, `tags`,
//! `request_id`, `created_at`, `fleet_name`, `host_name`; operators `eq` and `neq` (every
//! field but `created_at`), `gte`/`lte`/`eq` (`created_at`), `in`/`nin` with a list (`request_id`,
//! `tags`, `application`, `version`, `fleet_name`, `host_name`), `ilike` with `%` wildcards
//! (`fleet_name`, `host_name`); at most one filter per field; sort by `created_at` or
//! `available_session_sockets`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{ok, paginate, query, Answer, ApiError, Emu, PageQuery};
use super::store::{location, Deployment, Store};
use super::{clock, fleets, views};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub query: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
}

struct Filter {
    field: String,
    operator: String,
    value: Value,
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(format!("query: {message}"))
}

/// The sort keys: a field, and whether descending.
type Order = Vec<(String, bool)>;

fn parse_query(text: &str) -> Result<(Vec<Filter>, Order), ApiError> {
    let parsed: Value = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "must be JSON such as {{\"filters\":[{{\"field\":\"status\",\"operator\":\"eq\",\"value\":\"ready\"}}]}}: {e}"
        ))
    })?;
    let mut filters: Vec<Filter> = Vec::new();
    for (i, item) in parsed["filters"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = item["field"].as_str().unwrap_or_default().to_owned();
        let operator = item["operator"].as_str().unwrap_or_default().to_owned();
        let allowed: &[&str] = match field.as_str() {
            "status" => &["eq", "neq"],
            "created_at" => &["eq", "gte", "lte"],
            "request_id" | "tags" | "application" | "version" => &["eq", "neq", "in", "nin"],
            "fleet_name" | "host_name" => &["eq", "neq", "in", "nin", "ilike"],
            _ => {
                return Err(bad(format!(
                    "filters[{i}].field: must be status, application, version, tags, request_id, created_at, fleet_name or host_name, got {:?}",
                    item["field"]
                )))
            }
        };
        if !allowed.contains(&operator.as_str()) {
            return Err(bad(format!(
                "filters[{i}].operator: {field} takes {}, got {:?}",
                allowed.join(", "),
                item["operator"]
            )));
        }
        let listed = matches!(operator.as_str(), "in" | "nin");
        let value = item["value"].clone();
        let valid = if listed {
            value
                .as_array()
                .is_some_and(|v| v.iter().all(Value::is_string))
        } else {
            value.is_string()
        };
        if !valid {
            return Err(bad(format!(
                "filters[{i}].value: {} for {operator}, got {value}",
                if listed {
                    "a list of strings"
                } else {
                    "a string"
                }
            )));
        }
        if filters.iter().any(|f| f.field == field) {
            return Err(bad(format!("at most one filter per field ({field} twice)")));
        }
        filters.push(Filter {
            field,
            operator,
            value,
        });
    }
    let mut order = Vec::new();
    for (i, item) in parsed["order_by"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = item["field"].as_str().unwrap_or_default();
        if !["created_at", "available_session_sockets"].contains(&field) {
            return Err(bad(format!(
                "order_by[{i}].field: created_at or available_session_sockets, got {:?}",
                item["field"]
            )));
        }
        let descending = match item["order"].as_str().unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(bad(format!(
                    "order_by[{i}].order: asc or desc, got {other:?}"
                )))
            }
        };
        order.push((field.to_owned(), descending));
    }
    Ok((filters, order))
}

/// `%` matches any run of characters; case-insensitive.
fn ilike(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_lowercase(), text.to_lowercase());
    let parts: Vec<&str> = pattern.split('%').collect();
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(after) => rest = after,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

fn matches(store: &Store, d: &Deployment, f: &Filter) -> Result<bool, ApiError> {
    let have: Vec<String> = match f.field.as_str() {
        "status" => vec![d.status.filter_name().to_owned()],
        "application" => vec![d.app_name.clone()],
        "version" => vec![d.version_name.clone()],
        "request_id" => vec![d.request_id.clone()],
        "tags" => d.tag_names(),
        "host_name" => d.host_id.iter().cloned().collect(),
        "fleet_name" => d
            .host_id
            .as_ref()
            .and_then(|h| store.hosts.get(h))
            .map(|h| h.fleet.clone())
            .into_iter()
            .collect(),
        _ => {
            let created = clock::parse_platform(f.value.as_str().unwrap_or_default())
                .or_else(|_| {
                    humantime::parse_rfc3339_weak(f.value.as_str().unwrap_or_default())
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| bad(format!("created_at: {e}")))?;
            return Ok(match f.operator.as_str() {
                "gte" => d.start_time >= created,
                "lte" => d.start_time <= created,
                _ => clock::platform(d.start_time) == clock::platform(created),
            });
        }
    };
    let case = |a: &str, b: &str| {
        if f.field == "status" {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let one = f.value.as_str().unwrap_or_default();
    let list: Vec<&str> = f
        .value
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Ok(match f.operator.as_str() {
        "eq" => have.iter().any(|h| case(h, one)),
        "neq" => !have.iter().any(|h| case(h, one)),
        "in" => have.iter().any(|h| list.contains(&h.as_str())),
        "nin" => !have.iter().any(|h| list.contains(&h.as_str())),
        _ => have.iter().any(|h| ilike(one, h)),
    })
}

pub async fn list(State(emulator): Emu, q: Result<Query<ListQuery>, QueryRejection>) -> Answer {
    let q = query(q)?;
    let (filters, order) = match q.query.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => parse_query(text)?,
        None => (Vec::new(), Vec::new()),
    };
    let store = emulator.lock();
    let mut active: Vec<&Deployment> = Vec::new();
    for d in store.deployments_in_order() {
        if d.status.is_final() {
            continue;
        }
        let mut keep = true;
        for f in &filters {
            keep = keep && matches(&store, d, f)?;
        }
        if keep {
            active.push(d);
        }
    }
    for (field, descending) in order.iter().rev() {
        if field == "created_at" {
            active.sort_by_key(|d| d.seq);
        } else {
            active.sort_by_key(|d| d.spec.sockets.unwrap_or(0));
        }
        if *descending {
            active.reverse();
        }
    }
    let items: Vec<Value> = active.into_iter().map(views::list_item).collect();
    let total = items.len();
    let pages = PageQuery {
        page: q.page,
        limit: q.limit,
    };
    let (page, pagination) = paginate(&pages, items)?;
    ok(json!({"data": page, "total_count": total, "pagination": pagination, "message": []}))
}

#[derive(Debug, Default, Deserialize)]
pub struct LocationQuery {
    pub app: Option<String>,
    pub version: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub tags: Option<String>,
}

/// The local location's type.
pub const LOCATION_TYPE: &str = "standard";

pub async fn locations(
    State(emulator): Emu,
    q: Result<Query<LocationQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let store = emulator.lock();
    let fits = match (&q.app, &q.version) {
        (None, None) => true,
        (Some(app), Some(version)) => {
            let spec = &store
                .apps
                .get(app)
                .ok_or_else(|| ApiError::bad_request(format!("app: no app {app:?}")))?
                .versions
                .get(version)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("version: app {app} has no version {version:?}"))
                })?
                .spec;
            fleets::cloud_fits(&store, spec)
        }
        _ => {
            return Err(ApiError::bad_request(
                "app and version: give both to filter by capacity, or neither",
            ))
        }
    };
    let type_ok = q.kind.as_deref().is_none_or(|t| t == LOCATION_TYPE);
    let here = location();
    let mut item = json!({
        "city": here.city,
        "continent": here.continent,
        "country": here.country,
        "timezone": here.timezone,
        "administrative_division": here.administrative_division,
        "latitude": here.latitude.unwrap_or_default().to_string(),
        "longitude": here.longitude.unwrap_or_default().to_string(),
        "type": LOCATION_TYPE,
    });
    if q.tags.as_deref() == Some("true") {
        item["tags"] = json!([{"key": "emulator", "value": "local"}]);
    }
    let locations: Vec<Value> = if fits && type_ok {
        vec![item]
    } else {
        Vec::new()
    };
    ok(json!({"locations": locations, "messages": []}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ilike_matches_percent_wildcards() {
        assert!(ilike("alpha-%", "Alpha-North"));
        assert!(ilike("%north%", "alpha-north-america"));
        assert!(ilike("exact", "EXACT"));
        assert!(!ilike("alpha-%", "beta-1"));
        assert!(!ilike("a%c", "abd"));
    }

    #[test]
    fn queries_are_checked() {
        assert!(
            parse_query(r#"{"filters":[{"field":"status","operator":"eq","value":"ready"}]}"#)
                .is_ok()
        );
        for bad in [
            "not json",
            r#"{"filters":[{"field":"colour","operator":"eq","value":"x"}]}"#,
            r#"{"filters":[{"field":"status","operator":"in","value":["x"]}]}"#,
            r#"{"filters":[{"field":"tags","operator":"in","value":"x"}]}"#,
            r#"{"filters":[{"field":"tags","operator":"eq","value":"a"},{"field":"tags","operator":"eq","value":"b"}]}"#,
            r#"{"order_by":[{"field":"name","order":"asc"}]}"#,
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }
}
