//! The fixture's schemas (`emulator/conformance/endpoints.json`) and a validator of JSON
//! bodies against them: types, required fields, enums, limits, nullability, the platform's
//! timestamp formats, and — for answers — no field the documents do not name.

use serde_json::Value;

/// Every problem of `value` against `schema`, each naming its JSON path. `closed`: an object
/// with documented properties may not hold others (answers); requests may.
pub fn validate(value: &Value, schema: &Value, path: &str, closed: bool) -> Vec<String> {
    let mut problems = Vec::new();
    check(value, schema, path, closed, &mut problems);
    problems
}

fn check(value: &Value, schema: &Value, path: &str, closed: bool, out: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != true {
            out.push(format!("{path}: null where the documents give no null"));
        }
        return;
    }
    let kind = schema["type"].as_str().unwrap_or("");
    let ok = match kind {
        "" => true,
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => {
            out.push(format!("{path}: unknown schema type {other}"));
            false
        }
    };
    if !ok {
        out.push(format!("{path}: expected {kind}, got {value}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(n) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|min| n < min) {
            out.push(format!(
                "{path}: {n} below the minimum {}",
                schema["minimum"]
            ));
        }
        if schema["maximum"].as_f64().is_some_and(|max| n > max) {
            out.push(format!(
                "{path}: {n} above the maximum {}",
                schema["maximum"]
            ));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min) {
            out.push(format!(
                "{path}: {text:?} shorter than {}",
                schema["minLength"]
            ));
        }
        if schema["maxLength"].as_u64().is_some_and(|max| chars > max) {
            out.push(format!(
                "{path}: {text:?} longer than {}",
                schema["maxLength"]
            ));
        }
        if let Some(format) = schema["x-format"].as_str() {
            if !formatted(text, format) {
                out.push(format!("{path}: {text:?} is not a {format} timestamp"));
            }
        }
    }
    if let Some(items) = value.as_array() {
        if schema["minItems"]
            .as_u64()
            .is_some_and(|min| (items.len() as u64) < min)
        {
            out.push(format!("{path}: fewer than {} items", schema["minItems"]));
        }
        if schema.get("items").is_some() {
            for (i, item) in items.iter().enumerate() {
                check(item, &schema["items"], &format!("{path}[{i}]"), closed, out);
            }
        }
    }
    if let Some(fields) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                out.push(format!("{path}: lacks the documented field {name}"));
            }
        }
        let properties = schema["properties"].as_object();
        let map = schema.get("additionalProperties").filter(|s| s.is_object());
        for (name, field) in fields {
            let at = format!("{path}.{name}");
            match (properties.and_then(|p| p.get(name)), map) {
                (Some(sub), _) => check(field, sub, &at, closed, out),
                (None, Some(sub)) => check(field, sub, &at, closed, out),
                (None, None) => {
                    let documented = properties.is_some_and(|p| !p.is_empty());
                    if closed && documented {
                        out.push(format!("{at}: not a documented field"));
                    }
                }
            }
        }
    }
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DD HH:MM:SS` with the separator `sep`.
fn date_time(text: &str, sep: u8) -> bool {
    let b = text.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == sep,
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// The platform's formats, as the documents' examples show them.
fn formatted(text: &str, format: &str) -> bool {
    match format {
        // 2025-11-29 22:35:31.971359
        "platform-time" => text.split_once('.').is_some_and(|(head, micros)| {
            date_time(head, b' ') && micros.len() == 6 && digits(micros)
        }),
        // 2021-07-14 14:17:37.711
        "platform-millis" => text.split_once('.').is_some_and(|(head, millis)| {
            date_time(head, b' ') && millis.len() == 3 && digits(millis)
        }),
        // 2025-11-26T16:32:30.825138Z
        "iso-time" => text.strip_suffix('Z').is_some_and(|t| {
            let (head, fraction) = t.split_once('.').unwrap_or((t, "0"));
            date_time(head, b'T') && digits(fraction)
        }),
        // 14:17:37
        "time-of-day" => {
            let b = text.as_bytes();
            b.len() == 8
                && b[2] == b':'
                && b[5] == b':'
                && digits(&text[..2])
                && digits(&text[3..5])
                && digits(&text[6..])
        }
        _ => false,
    }
}

#[test]
fn the_validator_catches_what_it_should() {
    let schema = serde_json::json!({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "x-format": "platform-time"},
        "b": {"type": "integer", "minimum": 1, "nullable": true},
        "m": {"type": "object", "additionalProperties": {"type": "boolean"}}}});
    let good = serde_json::json!({"a": "2025-11-29 22:35:31.971359", "b": null, "m": {"x": true}});
    assert!(validate(&good, &schema, "$", true).is_empty());
    let bad = serde_json::json!({"a": "2025-11-29T22:35:31Z", "b": 0, "m": {"x": 1}, "extra": 1});
    let problems = validate(&bad, &schema, "$", true);
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(validate(&serde_json::json!({"b": 2}), &schema, "$", true)[0].contains("lacks"));
    assert!(validate(
        &serde_json::json!({"a": "2025-11-29 22:35:31.971359", "x": 1}),
        &schema,
        "$",
        false
    )
    .is_empty());
}
