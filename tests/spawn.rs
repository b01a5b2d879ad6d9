//! Starting the game with the real agent: a file the kernel does not recognise is exit 126
//! with "exec format error" (no `/bin/sh` fallback, on a path or found on `PATH`); a missing
//! interpreter is named; the game starts, and restarts, in the agent's start directory while
//! the agent itself moves to `/`; a restart that cannot start the game exits with the agent's
//! own code, which `--exit-code-map` leaves alone.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use support::{agent_command, scratch_dir, wait_until, Running, DEADLINE, FAKE_GAME};

fn executable(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An ELF header for a machine this one is not: AArch64 (an arm64 server binary in an x86
/// image), or, where binfmt_misc would hand AArch64 binaries to an emulator, a machine number
/// no one emulates. Either way the kernel answers ENOEXEC.
fn foreign_elf() -> Vec<u8> {
    let aarch64_emulated = std::fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains("aarch64"))
        })
        .unwrap_or(false);
    let machine: u16 = if aarch64_emulated { 0x3039 } else { 183 };
    let mut elf = vec![0u8; 64];
    elf[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    elf[20..24].copy_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf
}

fn assert_exec_format_error(agent: &mut Running, file: &Path) {
    assert_eq!(agent.exit_code(), 126, "{}", agent.stderr());
    let stderr = agent.stderr();
    assert!(stderr.contains("exec format error"), "{stderr}");
    assert!(stderr.contains(&format!("{file:?}")), "{stderr}");
    assert!(
        !stderr.contains("Syntax error"),
        "handed to a shell: {stderr}"
    );
}

#[test]
fn a_file_the_kernel_does_not_recognise_is_126_with_exec_format_error() {
    let dir = scratch_dir("exec-format");
    let script = dir.join("server.sh");
    executable(&script, b"echo started by a shell\nexit 0\n");
    let binary = dir.join("server.arm64");
    executable(&binary, &foreign_elf());
    for file in [&script, &binary] {
        let mut command = agent_command();
        command.arg("--").arg(file);
        let mut agent = Running::start(command);
        assert_exec_format_error(&mut agent, file);
        assert!(agent.all_stdout().is_empty(), "something ran");
    }
}

#[test]
fn a_file_found_on_path_that_the_kernel_does_not_recognise_is_126_too() {
    let dir = scratch_dir("exec-format-path");
    let script = dir.join("game-server");
    executable(&script, b"echo started by a shell\n");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let mut command = agent_command();
    command.env("PATH", path).args(["--", "game-server"]);
    let mut agent = Running::start(command);
    assert_exec_format_error(&mut agent, &script);
}

#[test]
fn a_missing_interpreter_is_127_and_named() {
    let dir = scratch_dir("interpreter");
    let script = dir.join("server.sh");
    executable(&script, b"#!/nonexistent/interpreter\n");
    let mut command = agent_command();
    command.arg("--").arg(&script);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 127);
    let stderr = agent.stderr();
    assert!(
        stderr.contains("its interpreter is missing") && stderr.contains(&format!("{script:?}")),
        "{stderr}"
    );
}

fn cwd_of(pid: Pid) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap()
}

/// The game (given as a path relative to the start directory) starts there, and so does its
/// restart, while the agent's own working directory is `/`.
#[test]
fn the_game_starts_and_restarts_in_the_start_directory_while_the_agent_leaves_it() {
    let dir = scratch_dir("cwd");
    std::fs::copy(FAKE_GAME, dir.join("game")).unwrap();
    let mut command = agent_command();
    command.current_dir(&dir).args([
        "--on-exit",
        "1=restart,*=exit",
        "--restart-backoff",
        "100ms",
        "--",
        "./game",
        "--run-ms",
        "1000",
        "--exit",
        "1",
    ]);
    let mut agent = Running::start(command);
    let first = agent.wait_ready();
    let start = dir.canonicalize().unwrap();
    assert_eq!(cwd_of(first), start);
    assert!(
        wait_until(DEADLINE, || cwd_of(agent.pid()) == Path::new("/")),
        "the agent's cwd: {:?}",
        cwd_of(agent.pid())
    );
    // The restart: the next READY line is the new process's.
    let second = agent.wait_ready();
    assert_ne!(second, first);
    assert_eq!(cwd_of(second), start);
}

/// A restart whose program is gone: the agent exits 127 (its own code for "not found"),
/// which the `127=0` of `--exit-code-map` does not turn into a success.
#[test]
fn a_restart_that_cannot_start_the_game_exits_with_the_agents_code_unmapped() {
    let dir = scratch_dir("restart-gone");
    let game = dir.join("game");
    std::fs::copy(FAKE_GAME, &game).unwrap();
    let mut command = agent_command();
    command.current_dir(&dir).args([
        "--on-exit",
        "*=restart",
        "--restart-backoff",
        "100ms",
        "--exit-code-map",
        "127=0,1=0",
        "--",
        "./game",
        "--run-ms",
        "300",
        "--exit",
        "1",
    ]);
    let mut agent = Running::start(command);
    agent.wait_ready();
    std::fs::remove_file(&game).unwrap();
    assert_eq!(agent.exit_code(), 127, "{}", agent.stderr());
    let stderr = agent.stderr();
    assert!(
        stderr.contains("cannot restart the game server") && stderr.contains("command not found"),
        "{stderr}"
    );
}
