//! One run, start to verdict, in the mode its configuration names: [`crate::free`] or
//! [`crate::lockstep`], both following [`crate::lifecycle`].

use tokio::sync::watch;

use crate::config::{RunConfig, RunMode};
use crate::lifecycle::RunOutcome;

/// Runs one configuration in its mode to a verdict. `interrupt` turning true (Ctrl-C)
/// ends the run early; what was recorded is still checked and written.
pub async fn run_any(
    cfg: RunConfig,
    interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutcome> {
    match cfg.mode {
        RunMode::Free => crate::free::run_free(cfg, interrupt).await,
        RunMode::Lockstep => {
            let schedule = cfg.fault_schedule();
            crate::lockstep::run_lockstep(cfg, schedule, interrupt).await
        }
    }
}
