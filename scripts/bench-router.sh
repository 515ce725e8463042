#!/usr/bin/env bash
# Router throughput and added one-way latency against a direct loopback baseline.
# Usage: scripts/bench-router.sh [--duration 5s] [--window 256] [--pings 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p harness -p node
exec target/release/squall bench router "$@"
