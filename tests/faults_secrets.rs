//! A secrets scan of everything the agent prints and serves, black box.
//!
//! Scenarios, each in text and JSON log formats at `--log-level trace`: wrap mode with the
//! self-stop accepted, failing (503 until the attempts run out) and refused (401), with
//! `--api-token` and `ARBITRIUM_CONTEXT_URL`/`_TOKEN` set (the context points at the fake
//! too; wrap mode does not fetch it yet, see `main.rs`, so its token is only parsed); malformed
//! platform variables; a bad option with the API token in the environment; and the
//! `edgegap-agent self-stop` subcommand (accepted, 401, 503). All of the agent's stdout and
//! stderr (the game's output included) and every API response (`/healthz`, `/readyz`,
//! `/v1/status` before and after the self-stop outcome, `/v1/deployment`, `/v1/players`,
//! `/metrics`, the 401s and the 202 of `POST /v1/match/end`) are scanned for each secret, whole
//! and as any 10-character piece. The game and the pre-stop hook print the platform's token
//! variables from their environment into that output: by default the agent removes them, so
//! they print "unset". The scan is shown to work on output that does hold a secret: the API
//! token the game legitimately receives, and the platform's tokens passed on with
//! `--pass-platform-tokens`, printed by the game itself.

#[path = "support/fake_platform.rs"]
mod fake_platform;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::net::SocketAddr;
use std::process::Command;

use fake_platform::{on_own_runtime, FakePlatform, Reply};
use nix::sys::signal::Signal;
use support::{agent_command, start_with_api_env, wait_until, Running, DEADLINE, FAKE_GAME};
use tokio::runtime::Runtime;

const DELETE_TOKEN: &str = "dlt-8Fq2ZkW7xVr4Ln9Pc3";
const CONTEXT_TOKEN: &str = "ctx-Jm5Tb1Ys6Hd0Qw8Ge2";
const API_TOKEN: &str = "api-Rz3Nv7Kp2Xc9Fw4Lh6";
const SECRETS: [(&str, &str); 3] = [
    ("ARBITRIUM_DELETE_TOKEN", DELETE_TOKEN),
    ("ARBITRIUM_CONTEXT_TOKEN", CONTEXT_TOKEN),
    ("the API token", API_TOKEN),
];
const PIECE: usize = 10;

const STOP_PATH: &str = "/v1/self/stop/c0653765de3b/ap-7";
const MAPPING: &str = r#"{"ports":{"gameport":{"name":"gameport","internal":7777,"external":31669,"protocol":"UDP"},"web":{"name":"web","internal":8080,"external":31670,"protocol":"TCP"}}}"#;
const FORMATS: [&str; 2] = ["text", "json"];

/// The secrets found in `text`: whole, or as any [`PIECE`]-character piece.
fn leaks(text: &str) -> Vec<&'static str> {
    SECRETS
        .iter()
        .filter(|(_, secret)| {
            let chars: Vec<char> = secret.chars().collect();
            chars
                .windows(PIECE)
                .any(|piece| text.contains(&piece.iter().collect::<String>()))
        })
        .map(|(name, _)| *name)
        .collect()
}

/// A fake platform (on its own runtime) that answers every request with `reply`.
fn platform(reply: Reply) -> (Runtime, FakePlatform) {
    let (runtime, fake) = on_own_runtime(FakePlatform::start);
    fake.set_default(reply);
    (runtime, fake)
}

fn platform_env(fake: &FakePlatform) -> Vec<(&'static str, String)> {
    vec![
        ("ARBITRIUM_REQUEST_ID", "c0653765de3b".into()),
        ("ARBITRIUM_HOST_ID", "alpha-north-america-95fab093".into()),
        ("ARBITRIUM_PUBLIC_IP", "100.10.0.85".into()),
        ("ARBITRIUM_PORTS_MAPPING", MAPPING.into()),
        ("ARBITRIUM_PORT_GAMEPORT_INTERNAL", "7777".into()),
        ("ARBITRIUM_PORT_GAMEPORT_EXTERNAL", "31669".into()),
        ("ARBITRIUM_DEPLOYMENT_TAGS", r#"["eu","ranked"]"#.into()),
        ("ARBITRIUM_DELETE_URL", fake.url(STOP_PATH)),
        ("ARBITRIUM_DELETE_TOKEN", DELETE_TOKEN.into()),
        (
            "ARBITRIUM_CONTEXT_URL",
            fake.url("/v1/context/c0653765de3b/17"),
        ),
        ("ARBITRIUM_CONTEXT_TOKEN", CONTEXT_TOKEN.into()),
    ]
}

/// A `--pre-stop` hook that prints the platform's token variables it was given.
fn print_tokens_hook() -> String {
    format!("{FAKE_GAME} --print-env ARBITRIUM_DELETE_TOKEN --print-env ARBITRIUM_CONTEXT_TOKEN --exit 0")
}

fn agent_args(format: &'static str) -> Vec<&'static str> {
    vec![
        "--log-level=trace",
        if format == "json" {
            "--log-format=json"
        } else {
            "--log-format=text"
        },
        "--self-stop-max-attempts=3",
        "--self-stop-initial-backoff=10ms",
        "--self-stop-max-backoff=20ms",
        "--self-stop-attempt-timeout=1s",
        "--self-stop-deadline=3s",
    ]
}

/// GETs every read route; returns the answers, headers included.
fn read_routes(api: SocketAddr, into: &mut String) {
    for path in [
        "/healthz",
        "/readyz",
        "/v1/status",
        "/v1/deployment",
        "/v1/players",
        "/metrics",
    ] {
        let reply = http::get(api, path);
        into.push_str(&format!(
            "GET {path} {} {:?}\n{}\n",
            reply.status, reply.headers, reply.body
        ));
    }
}

fn post(api: SocketAddr, path: &str, headers: &[(&str, &str)], into: &mut String) -> u16 {
    let reply = http::call(api, "POST", path, headers, b"{\"reason\":\"done\"}").unwrap();
    into.push_str(&format!(
        "POST {path} {} {:?}\n{}\n",
        reply.status, reply.headers, reply.body
    ));
    reply.status
}

/// Wrap mode with a platform answering `reply`, the API token set; the test ends the match
/// through the API. Returns everything printed and served.
fn wrap_scenario(format: &'static str, reply: u16) -> String {
    let (_runtime, fake) = platform(Reply::Status(reply));
    let env = platform_env(&fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = agent_args(format);
    let hook = print_tokens_hook();
    args.extend([
        "--api-token",
        API_TOKEN,
        "--grace-period=3s",
        "--self-stop-wait=60s",
        "--pre-stop",
        &hook,
    ]);
    let game = [
        "--on-term-exit",
        "0",
        "--on-term-delay-ms",
        "1000",
        "--print-env",
        "ARBITRIUM_DELETE_TOKEN",
        "--print-env",
        "ARBITRIUM_CONTEXT_TOKEN",
        "--api-call",
        "POST:/v1/ready",
    ];
    let (mut agent, api) = start_with_api_env(&env, &args, &game);
    agent.wait_lines(&[
        "ENV ARBITRIUM_DELETE_TOKEN unset",
        "ENV ARBITRIUM_CONTEXT_TOKEN unset",
    ]);
    agent.wait_line("API POST /v1/ready -> 202");

    let mut served = String::new();
    read_routes(api, &mut served);
    assert_eq!(post(api, "/v1/match/end", &[], &mut served), 401);
    let wrong = [("Authorization", "Bearer not-the-token")];
    assert_eq!(post(api, "/v1/match/end", &wrong, &mut served), 401);
    let bearer = format!("Bearer {API_TOKEN}");
    let right = [("Authorization", bearer.as_str())];
    assert_eq!(post(api, "/v1/match/end", &right, &mut served), 202);

    let outcome = if reply == 200 {
        "self-stop accepted"
    } else {
        "self-stop failed"
    };
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains(outcome)),
        "{}",
        agent.stderr()
    );
    // While the game takes its second to stop (or waits for SIGTERM): the outcome is served.
    read_routes(api, &mut served);
    assert!(served.contains("\"self_stop\":\""), "{served}");
    if reply == 200 {
        agent.signal(Signal::SIGTERM);
    }
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    // The pre-stop hook ran, without the tokens either.
    let log = agent.stderr();
    for variable in ["ARBITRIUM_DELETE_TOKEN", "ARBITRIUM_CONTEXT_TOKEN"] {
        assert!(log.contains(&format!("ENV {variable} unset")), "{log}");
    }
    assert_eq!(
        log.matches("removed from the game server's environment")
            .count(),
        1,
        "{log}"
    );
    let deletes = fake.requests();
    assert!(!deletes.is_empty());
    for request in deletes.iter().filter(|r| r.method == "DELETE") {
        assert_eq!(
            request.header("authorization"),
            Some(DELETE_TOKEN.as_bytes())
        );
    }
    format!("{}\n{}\n{served}", agent.all_stdout(), agent.stderr())
}

/// Wrap mode with malformed platform variables and a token that is no valid header value.
fn malformed_env_scenario(format: &'static str) -> String {
    let bad_token = format!("{DELETE_TOKEN}\u{7f}");
    let cases: [Vec<(&str, &str)>; 2] = [
        vec![
            ("ARBITRIUM_REQUEST_ID", "c0653765de3b"),
            ("ARBITRIUM_PORTS_MAPPING", "{broken"),
            ("ARBITRIUM_DEPLOYMENT_VCPU_UNITS", "lots"),
            ("ARBITRIUM_DELETE_URL", "not-a-url"),
            ("ARBITRIUM_DELETE_TOKEN", DELETE_TOKEN),
            ("ARBITRIUM_CONTEXT_TOKEN", CONTEXT_TOKEN),
        ],
        vec![
            ("ARBITRIUM_REQUEST_ID", "c0653765de3b"),
            (
                "ARBITRIUM_DELETE_URL",
                "http://127.0.0.1:9/v1/self/stop/a/b",
            ),
            ("ARBITRIUM_DELETE_TOKEN", &bad_token),
            ("ARBITRIUM_CONTEXT_URL", "http://[::1"),
            ("ARBITRIUM_CONTEXT_TOKEN", CONTEXT_TOKEN),
        ],
    ];
    let mut all = String::new();
    for env in cases {
        let mut command = agent_command();
        command.envs(env).args(agent_args(format)).args([
            "--api-token",
            API_TOKEN,
            "--",
            FAKE_GAME,
            "--exit",
            "0",
        ]);
        let mut agent = Running::start(command);
        assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
        assert!(agent.stderr().contains("ARBITRIUM_"), "{}", agent.stderr());
        all.push_str(&format!("{}\n{}\n", agent.all_stdout(), agent.stderr()));
    }
    // A bad option, the API token coming from the environment: exit 64 before anything.
    let output = agent_command()
        .env("EDGEGAP_AGENT_API_TOKEN", API_TOKEN)
        .env("ARBITRIUM_DELETE_TOKEN", DELETE_TOKEN)
        .args(agent_args(format))
        .args(["--grace-period", "lots", "--", FAKE_GAME])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    all.push_str(&String::from_utf8_lossy(&output.stdout));
    all.push_str(&String::from_utf8_lossy(&output.stderr));
    all
}

/// `edgegap-agent self-stop` answered 200, 401 and 503.
fn subcommand_scenario(format: &'static str) -> String {
    let mut all = String::new();
    for (reply, code) in [(200, 0), (401, 77), (503, 69)] {
        let (_runtime, fake) = platform(Reply::Status(reply));
        let output = Command::new(support::AGENT)
            .env_clear()
            .envs(platform_env(&fake))
            .arg("self-stop")
            .args(agent_args(format))
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}\n",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(code), "{text}");
        assert_eq!(
            fake.requests()[0].header("authorization"),
            Some(DELETE_TOKEN.as_bytes())
        );
        all.push_str(&text);
    }
    all
}

#[test]
fn no_secret_appears_in_any_output_or_api_body() {
    for format in FORMATS {
        let scenarios = [
            ("self-stop accepted", wrap_scenario(format, 200)),
            ("self-stop failing", wrap_scenario(format, 503)),
            ("self-stop refused", wrap_scenario(format, 401)),
            ("malformed environment", malformed_env_scenario(format)),
            ("self-stop subcommand", subcommand_scenario(format)),
        ];
        for (scenario, text) in scenarios {
            // The agent has no trace events of its own: its debug lines show the level took.
            let debug = if format == "json" {
                "\"level\":\"DEBUG\""
            } else {
                " DEBUG "
            };
            if scenario.starts_with("self-stop ") && !scenario.ends_with("subcommand") {
                assert!(text.contains(debug), "{scenario}: no debug lines:\n{text}");
            }
            assert_eq!(
                leaks(&text),
                Vec::<&str>::new(),
                "{scenario} ({format}):\n{text}"
            );
        }
    }
}

/// The scan finds a secret where there is one: the game prints the API token it was given.
#[test]
fn the_scan_finds_the_api_token_the_game_prints() {
    let mut command = agent_command();
    command
        .args(["--api-token", API_TOKEN, "--", FAKE_GAME])
        .args(["--print-env", "EDGEGAP_AGENT_API_TOKEN", "--exit", "3"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 3);
    let text = format!("{}\n{}", agent.all_stdout(), agent.stderr());
    assert_eq!(leaks(&text), ["the API token"], "{text}");
    assert_eq!(
        leaks(&DELETE_TOKEN[3..PIECE + 3]),
        ["ARBITRIUM_DELETE_TOKEN"]
    );
    assert!(leaks(&DELETE_TOKEN[..PIECE - 1]).is_empty());
}

/// The platform's tokens reach the game (and the pre-stop hook) only when asked, by flag or
/// variable; the scan then finds them where the game printed them.
#[test]
fn the_platform_tokens_reach_the_game_only_with_the_opt_in() {
    let (_runtime, fake) = platform(Reply::Status(200));
    let env = platform_env(&fake);
    let game = [
        "--print-env",
        "ARBITRIUM_DELETE_TOKEN",
        "--print-env",
        "ARBITRIUM_CONTEXT_TOKEN",
        "--print-env",
        "ARBITRIUM_DELETE_URL",
    ];
    let hook = print_tokens_hook();
    for how in ["default", "flag", "variable"] {
        let mut command = agent_command();
        command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        match how {
            "flag" => {
                command.arg("--pass-platform-tokens");
            }
            "variable" => {
                command.env("EDGEGAP_AGENT_PASS_PLATFORM_TOKENS", "true");
            }
            _ => {}
        }
        command.args(["--pre-stop", &hook]);
        command.arg("--").arg(FAKE_GAME).args(game);
        let mut agent = Running::start(command);
        agent.wait_ready();
        // A stop runs the pre-stop hook, which prints what it was given, then stops the game.
        agent.signal(Signal::SIGTERM);
        let code = agent.exit_code();
        let text = format!("{}\n{}", agent.all_stdout(), agent.stderr());
        assert_eq!(code, 143, "{how}: {text}");
        assert!(text.contains("pre-stop hook ended"), "{how}: {text}");
        // The other platform variables are passed on either way.
        assert!(
            text.contains("ENV ARBITRIUM_DELETE_URL=http://"),
            "{how}: {text}"
        );
        if how == "default" {
            assert_eq!(leaks(&text), Vec::<&str>::new(), "{how}: {text}");
            // Twice each: the game's line, and the hook's in the agent's log.
            assert_eq!(
                text.matches("ENV ARBITRIUM_DELETE_TOKEN unset").count(),
                2,
                "{text}"
            );
            assert_eq!(
                text.matches("ENV ARBITRIUM_CONTEXT_TOKEN unset").count(),
                2,
                "{text}"
            );
            assert!(
                text.contains("ARBITRIUM_DELETE_TOKEN and ARBITRIUM_CONTEXT_TOKEN removed from the game server's environment"),
                "{text}"
            );
        } else {
            assert_eq!(
                leaks(&text),
                ["ARBITRIUM_DELETE_TOKEN", "ARBITRIUM_CONTEXT_TOKEN"],
                "{how}: {text}"
            );
            let delete = format!("ENV ARBITRIUM_DELETE_TOKEN={DELETE_TOKEN}");
            let context = format!("ENV ARBITRIUM_CONTEXT_TOKEN={CONTEXT_TOKEN}");
            assert_eq!(text.matches(&delete).count(), 2, "{text}");
            assert_eq!(text.matches(&context).count(), 2, "{text}");
            assert!(
                text.contains("ARBITRIUM_DELETE_TOKEN and ARBITRIUM_CONTEXT_TOKEN passed on to the game server (--pass-platform-tokens)"),
                "{text}"
            );
        }
    }
}
