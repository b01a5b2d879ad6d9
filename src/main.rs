//! `edgegap-agent`: reads like a runbook; the work is in the library.

use std::process::ExitCode;

use edgegap_agent::config::{Cli, ParseOutcome};
use edgegap_agent::supervisor::machine::SelfStopResult;
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
    logging::init(&cli.logging);

    // 4. One thread for async work (plus the signal thread): the agent must cost next to nothing.
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

    // 5. Start the game and run the match lifecycle to its end.
    let launch = Launch {
        command: cli.command.clone(),
        extra_env: vec![("EDGEGAP_AGENT_URL", format!("http://{DEFAULT_API_ADDR}"))],
        end_on_log: cli.lifecycle.end_on_log.clone(),
        pre_stop: cli.lifecycle.pre_stop.clone().map(|hook| hook.0),
    };
    let self_stop: supervisor::SelfStopCall = Box::new(|| {
        Box::pin(async { SelfStopResult::Failed("not configured (local mode)".into()) })
    });
    let events = supervisor::event_channel();
    match runtime.block_on(supervisor::run(
        launch,
        cli.machine_options(),
        events,
        self_stop,
    )) {
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
