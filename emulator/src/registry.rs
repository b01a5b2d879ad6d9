//! The container registry's tags (`/v1/container-registry/images/{image}/tags...`), from what
//! the emulator knows: every version's `docker_image:docker_tag`, and with `--docker` the
//! local engine's tags of that image (`docker image ls`). Deleting a tag removes it from the
//! listing (and with `--docker` untags it in the engine, `docker rmi`); bulk delete answers
//! 207 with a result per tag (204 deleted, 404 unknown, 500 the engine refused).
//!
//! Image names hold slashes (`my-org/my-game-server`), so one wildcard route takes the rest of
//! the path and splits off `/tags`, `/tags/{tag}` or `/tags/bulk-delete` itself.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;

use super::fields::string_list;
use super::http::{object, ok, paginate, query, reply, Answer, ApiError, Emu, PageQuery};
use super::{clock, Emulator};

const DOCKER_TIMEOUT: Duration = Duration::from_secs(30);

/// One tag of an image.
#[derive(Clone, Debug)]
struct Entry {
    tag: String,
    pushed: SystemTime,
    hash: String,
    size_mb: f64,
    /// Present in the local Docker engine (so a delete untags it there).
    in_docker: bool,
}

fn no_route(rest: &str) -> ApiError {
    ApiError::not_found(format!("no route /v1/container-registry/images/{rest}"))
}

fn no_image(image: &str) -> ApiError {
    ApiError::not_found(format!("Image {image} has no tag in the registry"))
}

/// A stable id for an artifact that only exists as a version's reference.
fn reference_hash(image: &str, tag: &str) -> String {
    let mut hasher = DefaultHasher::new();
    (image, tag).hash(&mut hasher);
    format!("local:{:016x}", hasher.finish())
}

/// `12.3MB`, `1.2GB`, `800kB`, `0B` (docker's sizes) in MB.
fn size_mb(text: &str) -> f64 {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    match unit.trim() {
        "GB" => number * 1000.0,
        "kB" | "KB" => number / 1000.0,
        "B" => number / 1_000_000.0,
        _ => number,
    }
}

async fn docker_tags(image: &str) -> Vec<Entry> {
    let run = Command::new("docker")
        .args(["image", "ls", "--no-trunc", "--format", "{{json .}}", image])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Ok(Ok(output)) = tokio::time::timeout(DOCKER_TIMEOUT, run).await else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|row| row["Tag"].as_str().is_some_and(|t| t != "<none>"))
        .map(|row| Entry {
            tag: row["Tag"].as_str().unwrap_or_default().to_owned(),
            pushed: row["CreatedAt"]
                .as_str()
                .and_then(|c| c.get(..19))
                .and_then(|c| clock::parse_platform(c).ok())
                .unwrap_or_else(SystemTime::now),
            hash: row["ID"].as_str().unwrap_or_default().to_owned(),
            size_mb: size_mb(row["Size"].as_str().unwrap_or_default()),
            in_docker: true,
        })
        .collect()
}

/// Every live tag of `image`, by tag.
async fn entries(emulator: &Emulator, image: &str) -> BTreeMap<String, Entry> {
    let mut found: BTreeMap<String, Entry> = BTreeMap::new();
    if emulator.settings.docker {
        for entry in docker_tags(image).await {
            found.insert(entry.tag.clone(), entry);
        }
    }
    let store = emulator.lock();
    for app in store.apps.values() {
        for version in app.versions.values() {
            let (_, name, tag) = &version.spec.image;
            if name != image || found.contains_key(tag) {
                continue;
            }
            found.insert(
                tag.clone(),
                Entry {
                    tag: tag.clone(),
                    pushed: version.create_time,
                    hash: reference_hash(image, tag),
                    size_mb: 0.0,
                    in_docker: false,
                },
            );
        }
    }
    found.retain(|tag, _| {
        !store
            .registry_deleted
            .contains(&(image.to_owned(), tag.clone()))
    });
    found
}

fn remaining(all: &BTreeMap<String, Entry>, hash: &str, except: Option<&str>) -> Vec<String> {
    all.values()
        .filter(|e| e.hash == hash && Some(e.tag.as_str()) != except)
        .map(|e| e.tag.clone())
        .collect()
}

pub async fn get_route(
    State(emulator): Emu,
    Path(rest): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let image = rest.strip_suffix("/tags").ok_or_else(|| no_route(&rest))?;
    let q = query(q)?;
    let all = entries(&emulator, image).await;
    if all.is_empty() {
        return Err(no_image(image));
    }
    let items: Vec<Value> = all
        .values()
        .map(|e| {
            json!({
                "tag": e.tag,
                "last_push_at": clock::platform(e.pushed),
                "artifact": {
                    "artifact_deleted": false,
                    "remaining_tags": remaining(&all, &e.hash, None),
                    "image_hash": e.hash,
                    "size_mb": e.size_mb,
                },
            })
        })
        .collect();
    let (page, _) = paginate(&q, items)?;
    ok(json!({"data": page}))
}

/// Deletes one tag; `Err((status, message))` as bulk delete reports it.
async fn delete_one(
    emulator: &Emulator,
    image: &str,
    tag: &str,
    all: &BTreeMap<String, Entry>,
) -> Result<Value, (StatusCode, String)> {
    let entry = all.get(tag).ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            format!("Tag {tag} of image {image} not found"),
        )
    })?;
    if entry.in_docker {
        let run = Command::new("docker")
            .args(["rmi", &format!("{image}:{tag}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output();
        match tokio::time::timeout(DOCKER_TIMEOUT, run).await {
            Ok(Ok(output)) if output.status.success() => {}
            Ok(Ok(output)) => {
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "docker rmi {image}:{tag} failed: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    ),
                ))
            }
            _ => {
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("docker rmi {image}:{tag} did not finish"),
                ))
            }
        }
    }
    emulator
        .lock()
        .registry_deleted
        .insert((image.to_owned(), tag.to_owned()));
    let left = remaining(all, &entry.hash, Some(tag));
    Ok(json!({
        "artifact_deleted": left.is_empty(),
        "size_mb": entry.size_mb,
        "remaining_tags": left,
        "image_hash": entry.hash,
    }))
}

pub async fn delete_route(State(emulator): Emu, Path(rest): Path<String>) -> Answer {
    let (image, tag) = rest.rsplit_once("/tags/").ok_or_else(|| no_route(&rest))?;
    if tag.contains('/') || tag.is_empty() {
        return Err(no_route(&rest));
    }
    let all = entries(&emulator, image).await;
    let artifact = delete_one(&emulator, image, tag, &all)
        .await
        .map_err(|(status, message)| ApiError::new(status, message))?;
    ok(json!({"artifact": artifact, "deleted_tag": tag}))
}

pub async fn post_route(State(emulator): Emu, Path(rest): Path<String>, body: Bytes) -> Answer {
    let image = rest
        .strip_suffix("/tags/bulk-delete")
        .ok_or_else(|| no_route(&rest))?;
    let body = object(&body)?;
    if body.get("tags").is_none() {
        return Err(ApiError::bad_request("tags: required, a list of tags"));
    }
    let tags = string_list(body.get("tags"), "tags").map_err(ApiError::bad_request)?;
    if tags.is_empty() {
        return Err(ApiError::bad_request("tags: at least one tag"));
    }
    let mut all = entries(&emulator, image).await;
    if all.is_empty() {
        return Err(no_image(image));
    }
    let mut results = Vec::new();
    let mut success = 0;
    for tag in &tags {
        let (status, message) = match delete_one(&emulator, image, tag, &all).await {
            Ok(_) => {
                success += 1;
                // A tag listed twice is deleted once, then not found.
                all.remove(tag);
                (StatusCode::NO_CONTENT, format!("Tag {tag} deleted"))
            }
            Err(failed) => failed,
        };
        results.push(json!({"tag": tag, "status": status.as_u16(), "message": message}));
    }
    Ok(reply(
        StatusCode::MULTI_STATUS,
        json!({
            "results": results,
            "summary": {"total": tags.len(), "success": success, "failed": tags.len() - success},
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_sizes_read_as_megabytes() {
        assert_eq!(size_mb("12.5MB"), 12.5);
        assert_eq!(size_mb("1.5GB"), 1500.0);
        assert_eq!(size_mb("800kB"), 0.8);
        assert_eq!(size_mb("0B"), 0.0);
    }
}
