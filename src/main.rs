//! `edgegap-agent`: reads like a runbook; the work is in the library.

use std::process::ExitCode;

use edgegap_agent::config::{Cli, ParseOutcome, Subcommand};
use edgegap_agent::platform::{self, Platform};
use edgegap_agent::supervisor::{self, Launch};
use edgegap_agent::{exit_code, logging, os, DEFAULT_API_ADDR};

fn main() -> ExitCode {
    // 1. Signals first: blocked before any thread exists, so every thread inherits the mask
    //    and none is lost between here and the signal thread.
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
    logging::init(cli.logging());

    // 4. The platform's ARBITRIUM_* variables, parsed once; malformed ones are warnings only.
    let (platform_env, env_problems) = platform::load_env();

    // 5. One thread for async work (plus the signal thread): the agent must cost next to nothing.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return code(exit_code::INTERNAL);
        }
    };

    // `edgegap-agent self-stop`: one self-stop, its outcome as the exit code.
    if let Some(Subcommand::SelfStop(command)) = &cli.subcommand {
        return code(runtime.block_on(platform::run_self_stop_command(
            platform_env,
            env_problems,
            &command.platform,
        )));
    }

    // 6. The platform side: HTTP client, self-stop handle, the deployment as the env gives it.
    //    Kept for the lifecycle wiring (self-stop on match end) and the API (GET /v1/deployment).
    let _platform = match Platform::start(platform_env, env_problems, &cli.platform) {
        Ok(platform) => platform,
        Err(error) => {
            tracing::error!("{error}");
            return code(exit_code::USAGE);
        }
    };

    // 7. Start the game and supervise it to its end.
    let launch = Launch {
        command: &cli.command,
        extra_env: vec![("EDGEGAP_AGENT_URL", format!("http://{DEFAULT_API_ADDR}"))],
    };
    match runtime.block_on(supervisor::run(launch, cli.supervisor.clone())) {
        Ok(exit) => code(exit),
        Err(error) => {
            tracing::error!(%error, "the game server could not be started");
            code(error.exit_code())
        }
    }
}

fn code(value: i32) -> ExitCode {
    ExitCode::from(u8::try_from(value).unwrap_or(u8::MAX))
}
