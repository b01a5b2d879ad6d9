//! `edgegap-agent`: reads like a runbook; the work is in the library.

use std::process::ExitCode;
use std::sync::Arc;

use edgegap_agent::agones::{self, Agones};
use edgegap_agent::api::{self, ApiState, Metrics};
use edgegap_agent::config::{Cli, ParseOutcome, Subcommand};
use edgegap_agent::lifecycle::AgentStatus;
use edgegap_agent::supervisor::sidecar::Sidecar;
use edgegap_agent::supervisor::{self, ApiLink, Launch};
use edgegap_agent::{exit_code, logging, os, platform, stdio, wiring};
use tokio::sync::{mpsc, watch};

/// How long the agent's last log lines may take to reach stderr after the run ended. The
/// supervisor has by then written the game's output, or given up on a stalled stream within
/// the platform's grace, so this only waits for the last lines of a healthy stderr.
const LAST_LINES_LIMIT: std::time::Duration = std::time::Duration::from_millis(250);

fn main() -> ExitCode {
    let exit = run();
    // Log lines are written by stderr's own thread: let the last ones out before exiting.
    stdio::flush_before_exit(LAST_LINES_LIMIT);
    exit
}

fn run() -> ExitCode {
    // 1. Signals first: blocked before any thread exists, so every thread inherits the mask
    //    and none is lost before the supervisor reads them from its signalfd.
    if let Err(error) = os::block_handled_signals() {
        eprintln!(
            "{} error: cannot block signals: {error}",
            logging::TEXT_PREFIX
        );
        return code(exit_code::INTERNAL);
    }

    // 2. Configuration, validated whole before anything starts.
    let cli = match Cli::parse_and_validate(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ParseOutcome::Informational(text)) => {
            print!("{text}");
            return code(exit_code::SUCCESS);
        }
        Err(ParseOutcome::Invalid(text)) => {
            eprint!("{} {text}", logging::TEXT_PREFIX);
            return code(exit_code::USAGE);
        }
    };

    // 3. Logging.
    let logging = cli.logging();
    logging::init(logging.log_format, logging.log_level);

    if let Some(warning) = cli
        .subcommand
        .is_none()
        .then(|| cli.api.exposure_warning())
        .flatten()
    {
        tracing::warn!("{warning}");
    }

    // 3b. Sidecar mode (no command): the process it watches, and the signal at its parent's
    //     death, before anything else can happen to either.
    let sidecar = match cli
        .is_sidecar()
        .then(|| Sidecar::prepare(cli.watch_target()))
    {
        None => None,
        Some(Ok(sidecar)) => {
            tracing::info!(
                "running in sidecar mode, beside a game started by something else: {}",
                sidecar.describe(cli.watch_target())
            );
            Some(sidecar)
        }
        Some(Err(error)) => {
            tracing::error!("sidecar mode: {error}");
            return code(exit_code::USAGE);
        }
    };

    // 4. The platform's ARBITRIUM_* variables, parsed once; malformed ones are warnings only.
    let (platform_env, env_problems) = platform::load_env();

    // 5. One thread for async work: the agent must cost next to nothing.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return code(exit_code::INTERNAL);
        }
    };

    // 6. The platform side: HTTP client, self-stop handle, the deployment as the env gives it.
    let options = match &cli.subcommand {
        Some(Subcommand::SelfStop(command)) => &command.platform,
        None => &cli.platform,
    };
    let platform = match options.platform(platform_env, env_problems) {
        Ok(platform) => platform,
        Err(error) => {
            tracing::error!("{error}");
            return code(exit_code::USAGE);
        }
    };

    // `edgegap-agent self-stop`: one self-stop, its outcome as the exit code (a stop signal
    // interrupts it).
    if cli.subcommand.is_some() {
        return code(runtime.block_on(wiring::self_stop_command(platform.self_stop)));
    }

    let exit = runtime.block_on(async {
        // 7. The local API, bound before the game exists: the game never starts without it.
        //    The default address gives way to a free port when the game's mapping or another
        //    process has it.
        let bound = match api::bind_listen(cli.api_listen_addr(), &platform.internal_ports()).await
        {
            Ok(bound) => bound,
            Err(error) => {
                tracing::error!(%error, "the local API could not be started");
                return error.exit_code();
            }
        };
        let url = bound.url();
        tracing::info!(addr = %bound.local_addr(), url = %url, "local API listening");
        // With --agones, the Agones SDK API too: bound before the game, which gets its port.
        let agones_bound = if cli.agones.agones {
            match agones::bind(cli.agones_listen_addr(), &platform.internal_ports()).await {
                Ok(bound) => {
                    tracing::info!(addr = %bound.local_addr(), "Agones SDK API listening");
                    Some(bound)
                }
                Err(error) => {
                    tracing::error!(%error, "the Agones SDK API could not be started");
                    return error.exit_code();
                }
            }
        } else {
            None
        };
        let (status_tx, status_rx) = watch::channel(AgentStatus::starting());
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::default());
        let state = Arc::new(
            ApiState::new(
                request_tx,
                status_rx,
                // The deployment as the environment gives it (no secret in it)...
                platform.deployment_json(),
                cli.api.api_token.clone(),
                cli.api.ready_on_ports.then(|| platform.tcp_ports()),
                Arc::clone(&metrics),
            )
            .with_guarded_reads(cli.api.api_guard_reads),
        );
        // Serves until the process exits, through the game's grace period.
        tokio::spawn(bound.serve(Arc::clone(&state), std::future::pending()));
        let self_stop = wiring::self_stop_call(platform.self_stop.clone(), metrics);
        // ...merged with the platform's context once fetched.
        wiring::serve_fetched_context(Arc::new(platform), Arc::clone(&state));

        let link = ApiLink {
            requests: request_rx,
            status: status_tx,
            roster: state.roster(),
        };
        // The Agones SDK API serves beside the agent's; in wrap mode the game gets its port.
        let agones_port = agones_bound.map(|bound| {
            let port = bound.local_addr().port().to_string();
            // Its connections are counted apart: the agent API's metrics stay its own.
            let sdk = Arc::new(Agones::new(Arc::clone(&state)));
            let metrics = Arc::new(Metrics::default());
            tokio::spawn(bound.serve_with(sdk, metrics, std::future::pending()));
            port
        });
        // 8. Sidecar mode: run the match lifecycle beside the game to its end.
        if let Some(sidecar) = sidecar {
            return match supervisor::sidecar::run(sidecar, cli.machine_options(), self_stop, link)
                .await
            {
                Ok(exit) => exit,
                Err(error) => {
                    tracing::error!(%error, "sidecar mode could not run");
                    error.exit_code()
                }
            };
        }
        // 8. Wrap mode: start the game (without the platform's tokens, unless asked) and run
        //    the match lifecycle to its end.
        let mut extra_env = vec![("EDGEGAP_AGENT_URL", url)];
        if let Some(token) = &cli.api.api_token {
            extra_env.push(("EDGEGAP_AGENT_API_TOKEN", token.expose().to_owned()));
        }
        if let Some(port) = agones_port {
            extra_env.push(("AGONES_SDK_HTTP_PORT", port));
        }
        let launch = Launch {
            command: cli.command.clone(),
            extra_env,
            remove_env: platform::game_env_removals(cli.game_env.pass_platform_tokens),
            end_on_log: cli.lifecycle.end_on_log.clone(),
            pre_stop: cli.lifecycle.pre_stop.clone().map(|hook| hook.0),
            kill_margin: cli.supervisor.kill_margin,
        };
        match supervisor::run(launch, cli.machine_options(), self_stop, link).await {
            Ok(exit) => exit,
            Err(error) => {
                tracing::error!(%error, "the game server could not be started");
                error.exit_code()
            }
        }
    });
    // 9. Exit now. The game is gone and its output passed on; tearing the runtime down
    //    (the API's listener and connections, its tasks) is what the kernel does at exit,
    //    only faster.
    std::mem::forget(runtime);
    code(exit)
}

fn code(value: i32) -> ExitCode {
    ExitCode::from(u8::try_from(value).unwrap_or(u8::MAX))
}
