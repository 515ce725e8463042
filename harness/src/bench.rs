//! `squall bench router`.

use crate::cli::BenchRouterArgs;

/// Measures router throughput and added latency.
pub async fn router(_args: &BenchRouterArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not yet")
}
