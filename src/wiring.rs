//! The glue between layers that do not know each other, used by `main`: the platform's
//! self-stop as the supervisor's call (its outcome counted in the API's metrics), and the
//! platform's context fetched into the API's deployment view. Each adapter is small; the
//! layers it joins stay independent (see the README's architecture section).

use std::sync::Arc;

use crate::api::{ApiState, Metrics};
use crate::platform::{Platform, SelfStop};
use crate::supervisor::SelfStopCall;

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
