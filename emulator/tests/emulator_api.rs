//! The emulator's API, black-box against the real binary: every route's status codes, bodies,
//! pagination and validation errors, authorization, and hidden env values never returned.

use edgegap_test_support::emulator::{request, unique, version_body, Emu, KEY};
use edgegap_test_support::{fake_game, Running, DEADLINE};
use serde_json::{json, Value};

const EMULATOR: &str = env!("CARGO_BIN_EXE_edgegap-emulator");

#[test]
fn a_missing_or_wrong_api_key_is_401_with_a_message() {
    let emu = Emu::start(&[]);
    let resp = request(&emu.addr, "GET", "/v1/apps", &[], None);
    assert_eq!(resp.status, 401);
    assert!(resp.message().contains("Authorization"), "{}", resp.body);
    for wrong in ["token nope", KEY, "Bearer test-api-key"] {
        let resp = request(
            &emu.addr,
            "GET",
            "/v1/apps",
            &[("Authorization", wrong)],
            None,
        );
        assert_eq!(resp.status, 401, "{wrong}");
        assert!(!resp.body.contains(KEY), "the key is never echoed");
    }
    let auth = format!("token {KEY}");
    let resp = request(
        &emu.addr,
        "GET",
        "/v1/apps",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.as_str()),
        Some("application/json")
    );
}

#[test]
fn a_generated_key_is_printed_at_start() {
    let mut command = std::process::Command::new(EMULATOR);
    command.args(["--listen", "127.0.0.1:0"]);
    let mut process = Running::start(command);
    let line = process.wait_line("edgegap-emulator listening on http://");
    let addr = line.rsplit("http://").next().unwrap().to_owned();
    let line = process.wait_line("edgegap-emulator API key: ");
    let key = line.split_whitespace().nth(3).unwrap();
    let auth = format!("token {key}");
    let resp = request(&addr, "GET", "/v1/apps", &[("Authorization", &auth)], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[test]
fn unknown_routes_are_404_whatever_the_credentials_and_wrong_methods_405() {
    let emu = Emu::start(&[]);
    let resp = emu.call("GET", "/v1/nothing-here", None);
    assert_eq!(resp.status, 404);
    assert!(resp.message().contains("/v1/nothing-here"));
    for auth in [&[][..], &[("Authorization", "token wrong")][..]] {
        let resp = request(&emu.addr, "GET", "/v1/nothing-here", auth, None);
        assert_eq!(resp.status, 404, "{auth:?}: {}", resp.body);
        assert!(resp.message().contains("/v1/nothing-here"));
    }
    let resp = emu.call("PUT", "/v1/apps", None);
    assert_eq!(resp.status, 405);
    assert!(resp.message().contains("PUT"), "{}", resp.body);
    assert_eq!(emu.call("GET", "/v1/self/stop/a/b", None).status, 405);
}

#[test]
fn apps_are_created_read_updated_listed_and_deleted() {
    let emu = Emu::start(&[]);
    let body = json!({"name": "my-game", "image": "", "is_active": true, "extra": 1});
    let resp = emu.call("POST", "/v1/app", Some(body.clone()));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let app = resp.json();
    assert_eq!(app["name"], "my-game");
    assert_eq!(app["is_active"], true);
    assert!(
        app.get("extra").is_none(),
        "unknown fields are not echoed: {app}"
    );
    let timestamp = app["create_time"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2025-11-29 22:35:31.971359".len(),
        "{timestamp}"
    );
    assert_eq!(&timestamp[10..11], " ");

    let resp = emu.call("POST", "/v1/app", Some(body));
    assert_eq!(resp.status, 409);
    assert!(resp.message().contains("my-game"));

    let resp = emu.call("GET", "/v1/app/my-game", None);
    assert_eq!(
        (resp.status, resp.json()["name"].clone()),
        (200, json!("my-game"))
    );
    assert_eq!(emu.call("GET", "/v1/app/other", None).status, 404);

    let resp = emu.call(
        "PATCH",
        "/v1/app/my-game",
        Some(json!({"is_active": false})),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["is_active"], false);
    let resp = emu.call("PATCH", "/v1/app/my-game", Some(json!({"name": "renamed"})));
    assert_eq!(resp.status, 200);
    assert_eq!(emu.call("GET", "/v1/app/my-game", None).status, 404);
    assert_eq!(emu.call("GET", "/v1/app/renamed", None).status, 200);
    assert_eq!(
        emu.call("PATCH", "/v1/app/missing", Some(json!({}))).status,
        404
    );

    let resp = emu.call("DELETE", "/v1/app/renamed", None);
    assert_eq!(resp.status, 200, "documented 200: {}", resp.body);
    assert_eq!(emu.call("GET", "/v1/app/renamed", None).status, 404);
    assert_eq!(emu.call("DELETE", "/v1/app/renamed", None).status, 404);
}

#[test]
fn app_validation_names_the_field() {
    let emu = Emu::start(&[]);
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "ab"}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (json!({"name": 42}), "name"),
        (json!({"name": "good-name", "image": ""}), "is_active"),
        (json!({"name": "good-name", "is_active": true}), "image"),
        (
            json!({"name": "good-name", "is_active": "yes", "image": ""}),
            "is_active",
        ),
    ] {
        let resp = emu.call("POST", "/v1/app", Some(body.clone()));
        assert_eq!(resp.status, 400, "{body}");
        assert!(resp.message().starts_with(field), "{body}: {}", resp.body);
    }
    let resp = request(
        &emu.addr,
        "POST",
        "/v1/app",
        &[("Authorization", &format!("token {KEY}"))],
        Some("{not json"),
    );
    assert_eq!(resp.status, 400);
    assert!(resp.message().contains("not valid JSON"));
    let resp = emu.call("POST", "/v1/app", Some(json!(["a list"])));
    assert_eq!(resp.status, 400);
    let huge = json!({"name": "big-app", "is_active": true, "image": "x".repeat(2 * 1024 * 1024)});
    let resp = emu.call("POST", "/v1/app", Some(huge));
    assert_eq!(resp.status, 413);
    assert!(resp.message().contains("at most"));
}

#[test]
fn lists_are_paginated_with_the_documented_object() {
    let emu = Emu::start(&[]);
    for i in 0..5 {
        emu.create_app(&format!("app-{i}"));
    }
    let page = emu.call("GET", "/v1/apps?page=2&limit=2", None).json();
    assert_eq!(page["total_count"], 5);
    let names: Vec<&str> = page["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-2", "app-3"]);
    assert_eq!(
        page["pagination"],
        json!({"number": 2, "next_page_number": 3, "previous_page_number": 1,
               "paginator": {"num_pages": 3}, "has_next": true, "has_previous": true})
    );
    let last = emu.call("GET", "/v1/apps?page=3&limit=2", None).json();
    assert_eq!(last["applications"].as_array().unwrap().len(), 1);
    assert_eq!(last["pagination"]["has_next"], false);
    assert_eq!(last["pagination"]["next_page_number"], Value::Null);
    let first = emu.call("GET", "/v1/apps", None).json();
    assert_eq!(first["applications"].as_array().unwrap().len(), 5);
    assert_eq!(first["pagination"]["paginator"]["num_pages"], 1);
    for bad in ["page=0", "limit=x", "page=-1"] {
        let resp = emu.call("GET", &format!("/v1/apps?{bad}"), None);
        assert_eq!(resp.status, 400, "{bad}");
    }

    emu.create_app("versions");
    for i in 0..3 {
        let body = version_body(&format!("v{i}"), &[fake_game()]);
        assert_eq!(
            emu.call("POST", "/v1/app/versions/version", Some(body))
                .status,
            200
        );
    }
    let page = emu
        .call("GET", "/v1/app/versions/versions?limit=2", None)
        .json();
    assert_eq!(page["total_count"], 3);
    assert_eq!(page["versions"].as_array().unwrap().len(), 2);
    assert_eq!(page["pagination"]["has_next"], true);
}

#[test]
fn versions_are_created_read_updated_listed_and_deleted() {
    let emu = Emu::start(&[]);
    emu.create_app("game");
    let mut body = version_body("1.0", &[fake_game()]);
    body["ports"] =
        json!([{"port": 7777, "protocol": "udp", "name": "gameport", "to_check": false}]);
    body["envs"] = json!([{"key": "MODE", "value": "ranked", "is_hidden": false}]);
    body["termination_grace_period_seconds"] = json!(30);
    body["restart_policy"] = json!("never");
    body["max_duration"] = json!(60);
    body["force_cache"] = json!(true);
    let resp = emu.call("POST", "/v1/app/game/version", Some(body.clone()));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let created = resp.json();
    assert_eq!(created["success"], true);
    assert_eq!(created["version"]["name"], "1.0");
    assert_eq!(
        created["version"]["force_cache"], true,
        "other fields are stored"
    );

    let got = emu.call("GET", "/v1/app/game/version/1.0", None).json();
    for field in [
        "termination_grace_period_seconds",
        "restart_policy",
        "max_duration",
        "envs",
        "req_cpu",
    ] {
        assert_eq!(got[field], body[field], "{field}");
    }
    assert_eq!(got["ports"][0]["name"], "gameport");

    assert_eq!(
        emu.call("POST", "/v1/app/game/version", Some(body)).status,
        409
    );
    assert_eq!(
        emu.call("GET", "/v1/app/game/version/2.0", None).status,
        404
    );
    assert_eq!(
        emu.call("GET", "/v1/app/nope/version/1.0", None).status,
        404
    );
    let resp = emu.call(
        "POST",
        "/v1/app/nope/version",
        Some(version_body("1", &["x"])),
    );
    assert_eq!(resp.status, 404);

    let resp = emu.call(
        "PATCH",
        "/v1/app/game/version/1.0",
        Some(json!({"restart_policy": "on_failure", "docker_tag": "1.0.1"})),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["version"]["restart_policy"], "on_failure");
    let resp = emu.call(
        "PATCH",
        "/v1/app/game/version/1.0",
        Some(json!({"termination_grace_period_seconds": 1})),
    );
    assert_eq!(resp.status, 400, "an update is validated whole");
    let got = emu.call("GET", "/v1/app/game/version/1.0", None).json();
    assert_eq!(got["docker_tag"], "1.0.1");
    assert_eq!(got["termination_grace_period_seconds"], 30);

    assert_eq!(
        emu.call("DELETE", "/v1/app/game/version/1.0", None).status,
        200
    );
    assert_eq!(
        emu.call("GET", "/v1/app/game/version/1.0", None).status,
        404
    );
    assert_eq!(
        emu.call("DELETE", "/v1/app/game/version/1.0", None).status,
        404
    );
}

#[test]
fn deleting_an_app_deletes_its_versions() {
    let emu = Emu::start(&[]);
    emu.create_app("doomed");
    let body = version_body("v", &[fake_game()]);
    assert_eq!(
        emu.call("POST", "/v1/app/doomed/version", Some(body))
            .status,
        200
    );
    assert_eq!(emu.call("DELETE", "/v1/app/doomed", None).status, 200);
    emu.create_app("doomed");
    assert_eq!(
        emu.call("GET", "/v1/app/doomed/version/v", None).status,
        404
    );
}

#[test]
fn version_validation_follows_the_documented_ranges() {
    let emu = Emu::start(&[]);
    emu.create_app("checked");
    let cases = [
        ("name", json!(null), "name"),
        ("docker_image", json!(null), "docker_image"),
        ("req_cpu", json!(null), "req_cpu"),
        ("req_memory", json!("lots"), "req_memory"),
        ("req_cpu", json!(99), "req_cpu"),
        ("req_memory", json!(99), "req_memory"),
        ("req_memory", json!(513), "req_memory"),
        ("time_to_deploy", json!(14), "time_to_deploy"),
        (
            "termination_grace_period_seconds",
            json!(4),
            "termination_grace_period_seconds",
        ),
        (
            "termination_grace_period_seconds",
            json!(3601),
            "termination_grace_period_seconds",
        ),
        ("restart_policy", json!("sometimes"), "restart_policy"),
        ("max_duration", json!(1441), "max_duration"),
        ("max_duration", json!(-2), "max_duration"),
        (
            "ports",
            json!([{"port": 60000, "protocol": "UDP"}]),
            "ports[0].port",
        ),
        (
            "ports",
            json!([{"port": 7777, "protocol": 17}]),
            "ports[0].protocol",
        ),
        (
            "ports",
            json!([{"port": 7777, "protocol": "UDP", "tls_upgrade": true}]),
            "ports[0].tls_upgrade",
        ),
        (
            "session_config",
            json!({"sockets": 4}),
            "session_config.kind",
        ),
        ("ports", json!([{"port": 7777}]), "ports[0].protocol"),
        (
            "envs",
            json!([{"key": "BIG", "value": "x".repeat(4097)}]),
            "envs[0].value",
        ),
        ("envs", json!([{"value": "v"}]), "envs[0].key"),
        ("command", json!("not a list"), "command"),
    ];
    for (field, value, named) in cases {
        let mut body = version_body("v", &[fake_game()]);
        body[field] = value.clone();
        let resp = emu.call("POST", "/v1/app/checked/version", Some(body));
        assert_eq!(resp.status, 400, "{field} = {value}");
        assert!(
            resp.message().starts_with(named),
            "{field} = {value}: {}",
            resp.body
        );
    }
    let mut body = version_body("edge", &[fake_game()]);
    body["envs"] = json!([{"key": "MAX", "value": "x".repeat(4096)}]);
    body["termination_grace_period_seconds"] = json!(3600);
    body["max_duration"] = json!(-1);
    body["req_cpu"] = json!(100);
    body["req_memory"] = json!(200);
    body["time_to_deploy"] = json!(15);
    body["ports"] = json!([{"port": 0, "protocol": "UDP", "name": "zero"},
        {"port": 59999, "protocol": "QUIC", "name": "top"}]);
    let resp = emu.call("POST", "/v1/app/checked/version", Some(body));
    assert_eq!(
        resp.status, 200,
        "the limits themselves are valid: {}",
        resp.body
    );
}

#[test]
fn hidden_env_values_are_never_returned() {
    let emu = Emu::start(&[]);
    emu.create_app("secretive");
    let secret = "s3cr3t-value-never-shown";
    let mut body = version_body("v", &[fake_game(), "--print-env", "API_SECRET"]);
    body["private_token"] = json!("registry-token-never-shown");
    body["envs"] = json!([
        {"key": "API_SECRET", "value": secret, "is_hidden": true},
        {"key": "PLAIN", "value": "visible", "is_hidden": false}
    ]);
    let mut bodies = Vec::new();
    let resp = emu.call("POST", "/v1/app/secretive/version", Some(body));
    assert_eq!(resp.status, 200);
    bodies.push(resp.body);
    bodies.push(emu.call("GET", "/v1/app/secretive/version/v", None).body);
    bodies.push(emu.call("GET", "/v1/app/secretive/versions", None).body);
    let resp = emu.call(
        "PATCH",
        "/v1/app/secretive/version/v",
        Some(json!({"docker_tag": "2"})),
    );
    bodies.push(resp.body);
    let id = emu.deploy(
        "secretive",
        json!({"environment_variables": [{"key": "DEPLOY_SECRET", "value": "deploy-secret-x", "is_hidden": true}]}),
    );
    // The process does get the value; the API never shows it.
    assert_eq!(emu.printed_env(&id, "API_SECRET"), secret);
    bodies.push(emu.status(&id).to_string());
    bodies.push(emu.call("GET", "/v1/deployments", None).body);
    bodies.push(emu.call("DELETE", "/v1/app/secretive/version/v", None).body);
    for body in &bodies {
        assert!(!body.contains(secret), "{body}");
        assert!(!body.contains("deploy-secret-x"), "{body}");
        assert!(!body.contains("registry-token-never-shown"), "{body}");
    }
    assert!(bodies[1].contains("visible"));
    assert!(bodies[1].contains("This value is set and encrypted"));
}

#[test]
fn deploy_validation_and_lookups() {
    let emu = Emu::start(&[]);
    let app = emu.app_with_version(json!({}));
    let cases = [
        (json!({"version": "v", "users": []}), 400, "application"),
        (json!({"application": app, "users": []}), 400, "version"),
        (
            json!({"application": app, "version": "v", "users": "everyone"}),
            400,
            "users",
        ),
        (
            json!({"application": app, "version": "v", "users": [], "tags": [1]}),
            400,
            "tags",
        ),
        (
            json!({"application": "missing-app", "version": "v", "users": []}),
            400,
            "App missing-app",
        ),
        (
            json!({"application": app, "version": "nope", "users": []}),
            400,
            "Version nope",
        ),
    ];
    for (body, status, message) in cases {
        let resp = emu.call("POST", "/v2/deployments", Some(body.clone()));
        assert_eq!(resp.status, status, "{body}");
        assert!(resp.message().starts_with(message), "{body}: {}", resp.body);
    }
    emu.create_app("no-command");
    let mut body = version_body("v", &[]);
    body.as_object_mut().unwrap().remove("command");
    assert_eq!(
        emu.call("POST", "/v1/app/no-command/version", Some(body))
            .status,
        200
    );
    let resp = emu.call(
        "POST",
        "/v2/deployments",
        Some(json!({"application": "no-command", "version": "v", "users": []})),
    );
    assert_eq!(resp.status, 400);
    assert!(resp.message().contains("command"));

    let inactive = emu.app_with_version(json!({"is_active": false}));
    let resp = emu.call(
        "POST",
        "/v2/deployments",
        Some(json!({"application": inactive, "version": "v", "users": []})),
    );
    assert_eq!(resp.status, 400);
    assert!(resp.message().contains("not active"));

    for path in [
        "/v1/status/000000000000",
        "/v1/deployment/000000000000/container-logs",
        "/v1/deployments/000000000000/tags",
        "/emulator/v1/deployments/000000000000/events",
    ] {
        assert_eq!(emu.call("GET", path, None).status, 404, "{path}");
    }
    assert_eq!(
        emu.call("DELETE", "/v1/stop/000000000000", None).status,
        404
    );
}

#[test]
fn a_deployment_answers_with_the_request_and_lists_with_pagination() {
    let emu = Emu::start(&[]);
    let app = emu.app_with_version(json!({}));
    let resp = emu.call(
        "POST",
        "/v2/deployments",
        Some(json!({"application": app, "version": "v", "users": [{"user_type": "ip_address", "user_data": {"ip_address": "1.2.3.4"}}], "tags": ["eu", "ranked"]})),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    let created = resp.json();
    let id = created["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 12);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        created,
        json!({"request_id": id}),
        "the documented v2 answer"
    );

    // The previous route, still used by tools and plugins: the v1 `Request` answer.
    let resp = emu.call(
        "POST",
        "/v1/deploy",
        Some(json!({"app_name": app, "ip_list": ["1.2.3.4", "5.6.7.8"], "tags": ["v1"]})),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let v1 = resp.json();
    assert_eq!(v1["request_app"], app.as_str());
    assert_eq!(v1["request_version"], "v", "the latest version");
    assert_eq!(v1["request_user_count"], 2);
    assert_eq!(v1["tags"], json!(["v1"]));
    assert_eq!(v1["container_log_storage"]["enabled"], false);
    let v1_id = v1["request_id"].as_str().unwrap().to_owned();
    emu.call("DELETE", &format!("/v1/stop/{v1_id}"), None);
    emu.wait_status(&v1_id, "Status.TERMINATED", DEADLINE);

    let other = emu.deploy(&app, json!({}));
    let list = emu
        .call("GET", "/v1/deployments?limit=1&page=1", None)
        .json();
    assert_eq!(list["total_count"], 2);
    assert_eq!(list["data"][0]["request_id"], id);
    assert_eq!(list["pagination"]["has_next"], true);
    assert_eq!(list["message"], json!([]));
    for field in ["sockets", "sockets_usage", "is_joinable_by_session"] {
        assert!(
            list["data"][0].get(field).is_some(),
            "list item lacks {field}"
        );
    }
    let list = emu
        .call("GET", "/v1/deployments?limit=1&page=2", None)
        .json();
    assert_eq!(list["data"][0]["request_id"], other.as_str());

    let status = emu.wait_status(id, "Status.READY", DEADLINE);
    for field in [
        "request_id",
        "fqdn",
        "app_name",
        "app_version",
        "current_status",
        "running",
        "start_time",
        "elapsed_time",
        "public_ip",
        "ports",
        "location",
        "tags",
        "error",
    ] {
        assert!(
            status.get(field).is_some(),
            "status lacks {field}: {status}"
        );
    }
    assert_eq!(status["public_ip"], "127.0.0.1");
    assert_eq!(status["running"], true);
}

#[test]
fn deployment_tags_are_created_read_updated_and_deleted() {
    let emu = Emu::start(&[]);
    let app = emu.app_with_version(json!({}));
    let id = emu.deploy(&app, json!({"tags": ["first"]}));
    let base = format!("/v1/deployments/{id}/tags");
    let resp = emu.call("POST", &base, Some(json!({"name": "second"})));
    assert_eq!(resp.status, 200, "documented 200: {}", resp.body);
    let created = resp.json();
    assert_eq!(created["name"], "second");
    assert!(created["create_time"].is_string() && created["last_updated"].is_string());
    assert_eq!(
        emu.call("POST", &base, Some(json!({"name": "second"})))
            .status,
        409
    );
    assert_eq!(emu.call("POST", &base, Some(json!({}))).status, 400);
    let long = emu.call("POST", &base, Some(json!({"name": "x".repeat(21)})));
    assert_eq!(long.status, 400, "at most 20 characters");
    assert!(long.message().starts_with("name"), "{}", long.body);
    let list = emu.call("GET", &base, None).json();
    let names: Vec<&str> = list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(list["count"], 2);
    assert!(list["pagination"].is_object());
    assert_eq!(emu.call("GET", &format!("{base}/first"), None).status, 200);

    let resp = emu.call(
        "PATCH",
        &format!("{base}/second"),
        Some(json!({"name": "renamed"})),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["name"], "renamed");
    assert_eq!(resp.json()["create_time"], created["create_time"]);
    let clash = emu.call(
        "PATCH",
        &format!("{base}/renamed"),
        Some(json!({"name": "first"})),
    );
    assert_eq!(clash.status, 409);
    let missing = emu.call(
        "PATCH",
        &format!("{base}/second"),
        Some(json!({"name": "x"})),
    );
    assert_eq!(missing.status, 404);
    assert_eq!(emu.call("GET", &format!("{base}/none"), None).status, 404);
    assert_eq!(
        emu.call("DELETE", &format!("{base}/first"), None).status,
        204
    );
    assert_eq!(
        emu.call("DELETE", &format!("{base}/first"), None).status,
        404
    );
    assert_eq!(emu.status(&id)["tags"], json!(["renamed"]));
}

#[test]
fn locations_list_the_single_local_location() {
    let emu = Emu::start(&[]);
    let resp = emu.call("GET", "/v1/locations", None);
    assert_eq!(resp.status, 200);
    let locations = resp.json()["locations"].as_array().unwrap().clone();
    assert_eq!(locations.len(), 1);
    assert_eq!(locations[0]["city"], "Localhost");
}

#[test]
fn the_context_url_needs_its_own_token() {
    let emu = Emu::start(&[]);
    let id = emu.deploy_game(
        json!({}),
        &[
            "--print-env",
            "ARBITRIUM_CONTEXT_URL",
            "--print-env",
            "ARBITRIUM_CONTEXT_TOKEN",
        ],
    );
    let url = emu.printed_env(&id, "ARBITRIUM_CONTEXT_URL");
    let token = emu.printed_env(&id, "ARBITRIUM_CONTEXT_TOKEN");
    let path = url.strip_prefix(&format!("http://{}", emu.addr)).unwrap();
    assert!(path.starts_with(&format!("/v1/context/{id}/")), "{url}");
    let resp = request(&emu.addr, "GET", path, &[("authorization", &token)], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["request_id"], id.as_str());
    let resp = request(&emu.addr, "GET", path, &[("authorization", "wrong")], None);
    assert_eq!(resp.status, 401);
    let key = format!("token {KEY}");
    let resp = request(&emu.addr, "GET", path, &[("authorization", &key)], None);
    assert_eq!(
        resp.status, 401,
        "the operator key is not the context token"
    );
    let unknown = format!("/v1/context/{id}/999999");
    let resp = request(
        &emu.addr,
        "GET",
        &unknown,
        &[("authorization", &token)],
        None,
    );
    assert_eq!(resp.status, 404);
    let _ = unique("x");
}
