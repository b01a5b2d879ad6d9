//! What the README, `--help` and the module docs claim, checked against the code and the real
//! binary: the exit-code table of the README and of `src/exit_code.rs` agree with each other
//! and with the constants; every option in `--help` says what it does, and the README's option
//! table lists the same options with the same environment twins and defaults;
//! `--ready-on-ports` probes every TCP port of the mapping and no UDP port.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edgegap_agent::exit_code;
use support::{start_with_api_env, wait_until, AGENT};

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The rows `| code | meaning |` of the first Markdown table after the line `heading`, with
/// `prefix` stripped from each line first (`//! ` for a Rust module doc).
fn markdown_table(text: &str, heading: &str, prefix: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.strip_prefix(prefix).unwrap_or(line).trim())
        .collect();
    let start = lines
        .iter()
        .position(|line| *line == heading)
        .unwrap_or_else(|| panic!("no line {heading:?}"));
    let rows: Vec<(String, String)> = lines[start..]
        .iter()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2) // the header and the |---| line
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 2, "not a two-cell row: {line}");
            (cells[0].to_owned(), cells[1].to_owned())
        })
        .collect();
    assert!(rows.len() >= 5, "no table after {heading:?}: {rows:?}");
    rows
}

#[test]
fn the_exit_code_tables_of_the_readme_and_the_module_agree_with_the_constants() {
    let source = repo_file("src/exit_code.rs");
    let module = markdown_table(&source, "| code | meaning |", "//!");
    let readme = markdown_table(&repo_file("README.md"), "## Exit codes", "");
    assert_eq!(
        readme, module,
        "the README's exit-code table differs from src/exit_code.rs's"
    );

    // Every constant has its row, and every row its constant.
    let constants = [
        ("SUCCESS", exit_code::SUCCESS, "0..=255"),
        ("USAGE", exit_code::USAGE, "64"),
        ("SELF_STOP_GAVE_UP", exit_code::SELF_STOP_GAVE_UP, "69"),
        ("INTERNAL", exit_code::INTERNAL, "70"),
        ("SELF_STOP_REJECTED", exit_code::SELF_STOP_REJECTED, "77"),
        ("HUNG", exit_code::HUNG, "124"),
        ("NOT_EXECUTABLE", exit_code::NOT_EXECUTABLE, "126"),
        ("NOT_FOUND", exit_code::NOT_FOUND, "127"),
        ("SIGNAL_BASE", exit_code::SIGNAL_BASE, "128+N"),
        ("KILLED_AFTER_GRACE", exit_code::KILLED_AFTER_GRACE, "137"),
    ];
    let declared = source
        .lines()
        .filter(|line| line.starts_with("pub const ") && line.contains(": i32 ="))
        .count();
    assert_eq!(
        declared,
        constants.len(),
        "src/exit_code.rs declares a code this test does not know: give it a row in both tables and here"
    );
    for (name, value, row) in constants {
        let covered = match row {
            "0..=255" => (0..=255).contains(&value),
            "128+N" => value == 128,
            code => code.parse::<i32>() == Ok(value),
        };
        assert!(covered, "{name} = {value} is not what row {row:?} says");
        assert!(
            module.iter().any(|(code, _)| code == row),
            "no row {row:?} for {name}"
        );
    }
    for (code, meaning) in &module {
        assert!(
            constants.iter().any(|(_, _, row)| row == code),
            "row {code} ({meaning}) has no constant in src/exit_code.rs"
        );
    }
}

/// One option of `--help`: its flag, description, environment twin and default.
#[derive(Debug)]
struct HelpOption {
    description: String,
    env: Option<String>,
    default: Option<String>,
}

/// The options of a long `--help` (`Options:` section), by flag.
fn help_options(args: &[&str]) -> BTreeMap<String, HelpOption> {
    let output = Command::new(AGENT).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    let help = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Options:")
        .skip(1)
        .collect();
    // An option's first line is indented by at most 6 spaces (`  -h, --help`,
    // `      --grace-period <DURATION>`); its text, possible values included, by 10.
    let is_header = |line: &str| {
        let text = line.trim_start();
        text.starts_with('-') && line.len() - text.len() <= 6
    };
    let mut options = BTreeMap::new();
    let mut index = 0;
    while index < lines.len() {
        let header = lines[index].trim_start();
        index += 1;
        if !is_header(lines[index - 1]) {
            continue;
        }
        let flag = header
            .split([' ', ','])
            .find(|word| word.starts_with("--"))
            .unwrap_or_else(|| panic!("no long flag in {header:?}"))
            .to_owned();
        let mut body = Vec::new();
        while index < lines.len() && !is_header(lines[index]) {
            body.push(lines[index].trim());
            index += 1;
        }
        let bracketed = |prefix: &str| {
            body.iter().find_map(|line| {
                line.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(']'))
                    .map(|value| value.trim_end_matches('=').to_owned())
            })
        };
        let description = body
            .iter()
            .take_while(|line| !line.starts_with('['))
            .copied()
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let option = HelpOption {
            description,
            env: bracketed("[env: "),
            default: bracketed("[default: "),
        };
        options.insert(flag, option);
    }
    options
}

#[test]
fn every_option_in_help_says_what_it_does() {
    for args in [&["--help"][..], &["self-stop", "--help"]] {
        let options = help_options(args);
        assert!(options.len() >= 8, "{args:?}: {options:?}");
        for (flag, option) in &options {
            assert!(
                option.description.len() >= 10,
                "`edgegap-agent {}` has no description for {flag}: {option:?}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn the_readme_option_table_is_the_help() {
    let mut help = help_options(&["--help"]);
    help.extend(help_options(&["self-stop", "--help"]));
    help.remove("--help");
    help.remove("--version");

    let readme = repo_file("README.md");
    let table = readme
        .lines()
        .skip_while(|line| *line != "## Options")
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2);
    let mut listed = Vec::new();
    for line in table {
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches(['|', ' ']))
            .collect();
        let flag = cells[0]
            .trim_start_matches('`')
            .split([' ', '`'])
            .next()
            .unwrap()
            .to_owned();
        let option = help
            .get(&flag)
            .unwrap_or_else(|| panic!("the README lists {flag}, which --help does not"));
        assert_eq!(
            Some(cells[1].trim_matches('`')),
            option.env.as_deref(),
            "{flag}'s environment twin"
        );
        let default = cells[2].trim_matches('`');
        match &option.default {
            Some(value) => assert_eq!(default, value, "{flag}'s default"),
            None => assert!(
                ["none", "off"].contains(&default),
                "{flag}: the README says the default is {default:?}, --help shows none"
            ),
        }
        listed.push(flag);
    }
    for flag in help.keys() {
        assert!(
            listed.contains(flag),
            "{flag} is in --help but not in the README's option table"
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ARBITRIUM_*` variables for a mapping of `(name, internal port, protocol)`.
fn mapping_env(ports: &[(&str, u16, &str)]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let mut mapping = serde_json::Map::new();
    for (index, (name, internal, protocol)) in ports.iter().enumerate() {
        let external = 31000 + index as u16;
        mapping.insert(
            (*name).to_owned(),
            serde_json::json!({"name": name, "internal": internal, "external": external, "protocol": protocol}),
        );
        let upper = name.to_uppercase();
        env.push((
            format!("ARBITRIUM_PORT_{upper}_INTERNAL"),
            internal.to_string(),
        ));
        env.push((
            format!("ARBITRIUM_PORT_{upper}_EXTERNAL"),
            external.to_string(),
        ));
        env.push((
            format!("ARBITRIUM_PORT_{upper}_PROTOCOL"),
            (*protocol).to_owned(),
        ));
    }
    env.push((
        "ARBITRIUM_PORTS_MAPPING".to_owned(),
        serde_json::json!({ "ports": mapping }).to_string(),
    ));
    env
}

/// Waits for `/readyz` to answer `status` and returns its body.
fn readyz_when(addr: std::net::SocketAddr, status: u16) -> serde_json::Value {
    let mut reply = http::get(addr, "/readyz");
    assert!(
        wait_until(Duration::from_secs(10), || {
            reply = http::get(addr, "/readyz");
            reply.status == status
        }),
        "/readyz never answered {status}: {} {}",
        reply.status,
        reply.body
    );
    reply.json()
}

#[test]
fn ready_on_ports_probes_every_tcp_port_of_the_mapping_and_no_udp_port() {
    // The game listens on its TCP port only; the WebSocket port is TCP too and stays closed.
    let (game, web, voice) = (free_port(), free_port(), free_port());
    let env = mapping_env(&[
        ("game", game, "TCP"),
        ("web", web, "WS"),
        ("voice", voice, "UDP"),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (mut agent, addr) = start_with_api_env(
        &env,
        &["--ready-on-ports"],
        &["--listen-tcp-env", "ARBITRIUM_PORT_GAME_INTERNAL"],
    );
    agent.wait_line(&format!("LISTENING {game}"));
    let refused = readyz_when(addr, 503);
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("[{web}]")), "{detail}");
    drop(agent);

    // With the WebSocket port gone, the TCP port is all there is to probe: the closed UDP
    // port does not hold readiness back.
    let env = mapping_env(&[("game", game, "TCP"), ("voice", voice, "UDP")]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (mut agent, addr) = start_with_api_env(
        &env,
        &["--ready-on-ports"],
        &["--listen-tcp-env", "ARBITRIUM_PORT_GAME_INTERNAL"],
    );
    agent.wait_line(&format!("LISTENING {game}"));
    assert_eq!(
        readyz_when(addr, 200),
        serde_json::json!({"ready": true, "by": "ports", "ports": [game]})
    );
}
