//! The glue between layers that do not know each other, used by `main`: the platform's
//! self-stop as the supervisor's call (its outcome counted in the API's metrics), the
//! `self-stop` command (the platform's self-stop against the OS's signals), and the
//! platform's context fetched into the API's deployment view. Each adapter is small; the
//! layers it joins stay independent (see the README's architecture section).

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use crate::api::{ApiState, Metrics};
use crate::exit_code;
use crate::os;
use crate::platform::{Platform, SelfStop};
use crate::supervisor::SelfStopCall;

/// `edgegap-agent self-stop`: one self-stop, its outcome as the exit code. SIGINT (Ctrl-C),
/// SIGTERM or SIGHUP end it at once, with 128+N (130, 143, 129): the retries can take
/// minutes, and whoever runs it must be able to stop it. The handled signals must already be
/// blocked ([`os::block_handled_signals`]).
pub async fn self_stop_command(self_stop: SelfStop) -> i32 {
    let (sender, mut signals) = mpsc::unbounded_channel();
    if let Err(error) = os::spawn_signal_waiter(sender) {
        tracing::error!(%error, "cannot start the signal thread");
        return exit_code::INTERNAL;
    }
    let stop = self_stop.stop();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            outcome = &mut stop => return outcome.exit_code(),
            Some(signal) = signals.recv() => {
                if matches!(signal, Signal::SIGINT | Signal::SIGTERM | Signal::SIGHUP) {
                    tracing::warn!(
                        signal = signal.as_str(),
                        "self-stop interrupted before the platform's answer: it may or may not have reached the platform"
                    );
                    return exit_code::SIGNAL_BASE + signal as i32;
                }
            }
        }
    }
}

/// The supervisor's self-stop: the platform's single-flight client, its attempts counted in
/// `metrics` (`GET /metrics`), and its outcome reduced to what the lifecycle needs: accepted
/// (or already gone: the platform's SIGTERM will come) or not, and why.
pub fn self_stop_call(self_stop: SelfStop, metrics: Arc<Metrics>) -> SelfStopCall {
    Box::new(move || {
        let self_stop = self_stop.clone();
        let metrics = Arc::clone(&metrics);
        Box::pin(async move {
            let outcome = self_stop.stop().await;
            metrics.record_self_stop(&outcome);
            if outcome.is_success() {
                Ok(())
            } else {
                Err(outcome.to_string())
            }
        })
    })
}

/// Fetches the platform's context in the background (the game does not wait for metadata)
/// and serves the deployment merged with it once it arrives. Nothing to do without
/// `ARBITRIUM_CONTEXT_URL` and its token.
pub fn serve_fetched_context(platform: Arc<Platform>, state: Arc<ApiState>) {
    if !platform.has_context() {
        return;
    }
    tokio::spawn(async move {
        let deployment = platform.fetch_deployment().await;
        match serde_json::to_value(&deployment) {
            Ok(value) => state.set_deployment(value),
            Err(error) => tracing::warn!(%error, "cannot serve the fetched deployment context"),
        }
    });
}
