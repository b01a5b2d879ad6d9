//! Checks of single JSON fields shared by every payload (required and optional strings,
//! integers in a range, booleans, lists of strings, `{key, value, is_hidden}` lists), each
//! error naming the field and the bad value.

use serde_json::{Map, Value};

/// Why a payload is refused: a message that starts with the field's name.
pub type Invalid = String;

/// The most bytes of one injected variable's value ("up to 4 KB").
pub const ENV_VALUE_MAX_BYTES: usize = 4096;

/// An environment variable (`envs[]` of a version, `environment_variables[]` of a deployment).
#[derive(Clone, Debug, PartialEq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
    pub is_hidden: bool,
}

pub fn required_str(value: Option<&Value>, field: &str) -> Result<String, Invalid> {
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        Some(Value::String(_)) => Err(format!("{field}: required, must not be empty")),
        None | Some(Value::Null) => Err(format!("{field}: required")),
        Some(other) => Err(format!("{field}: must be a string, got {other}")),
    }
}

pub fn optional_str(fields: &Map<String, Value>, field: &str) -> Result<Option<String>, Invalid> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{field}: must be a string, got {other}")),
    }
}

pub fn required_int(
    fields: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<i64, Invalid> {
    optional_int(fields, field, min, max)?.ok_or_else(|| format!("{field}: required"))
}

pub fn optional_int(
    fields: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, Invalid> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            Some(n) => Err(format!("{field}: must be between {min} and {max}, got {n}")),
            None => Err(format!("{field}: must be an integer, got {value}")),
        },
    }
}

pub fn optional_bool(fields: &Map<String, Value>, field: &str) -> Result<Option<bool>, Invalid> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("{field}: must be true or false, got {other}")),
    }
}

/// An optional list of strings (`tags`, `private_host_ids`, ...).
pub fn string_list(value: Option<&Value>, field: &str) -> Result<Vec<String>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{field}[{i}]: must be a string, got {item}"))
            })
            .collect(),
        Some(other) => Err(format!("{field}: must be a list of strings, got {other}")),
    }
}

/// Checks a list of `{key, value, is_hidden}`; `field` names it in errors.
pub fn env_list(value: Option<&Value>, field: &str) -> Result<Vec<EnvVar>, Invalid> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("{field}: must be a list, got {other}")),
    };
    let mut vars = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(entry) = item else {
            return Err(format!("{field}[{i}]: must be an object, got {item}"));
        };
        let key = required_str(entry.get("key"), "key").map_err(|e| format!("{field}[{i}].{e}"))?;
        if key.contains('=') || key.contains('\0') {
            return Err(format!(
                "{field}[{i}].key: not a usable variable name: {key:?}"
            ));
        }
        let value = match entry.get("value") {
            Some(Value::String(v)) => v.clone(),
            other => {
                return Err(format!(
                    "{field}[{i}].value: required, a string (got {})",
                    other.map_or("nothing".to_owned(), Value::to_string)
                ))
            }
        };
        if value.len() > ENV_VALUE_MAX_BYTES || value.contains('\0') {
            return Err(format!(
                "{field}[{i}].value: at most {ENV_VALUE_MAX_BYTES} bytes without NUL, got {} bytes for {key}",
                value.len()
            ));
        }
        let is_hidden = optional_bool(entry, "is_hidden")
            .map_err(|e| format!("{field}[{i}].{e}"))?
            .unwrap_or(false);
        vars.push(EnvVar {
            key,
            value,
            is_hidden,
        });
    }
    Ok(vars)
}

/// The value the API shows instead of a hidden variable's value.
pub const HIDDEN_VALUE: &str = "This value is set and encrypted";

/// The variables as the API shows them: `{key, value, is_hidden}`, hidden values masked.
pub fn env_json(vars: &[EnvVar]) -> Value {
    Value::Array(
        vars.iter()
            .map(|v| {
                let value = if v.is_hidden { HIDDEN_VALUE } else { &v.value };
                serde_json::json!({"key": v.key, "value": value, "is_hidden": v.is_hidden})
            })
            .collect(),
    )
}
