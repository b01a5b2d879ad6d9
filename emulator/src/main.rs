//! `edgegap-emulator`: the Edgegap platform, locally (see the library's doc, `lib.rs`).
//! Reads like a runbook: parse the command line, start a runtime, run, exit with its code.

use std::process::ExitCode;

use clap::Parser;
use edgegap_emulator::guard;
use edgegap_emulator::quickstart::{self, Cli};

fn main() -> ExitCode {
    // The emulator's own guard process (see guard.rs), before any flag is parsed.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == guard::GUARD_ARG)
    {
        return ExitCode::from(guard::run());
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("[edgegap-emulator] cannot start the async runtime: {error}");
            return ExitCode::from(70);
        }
    };
    let code = runtime.block_on(quickstart::run(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
