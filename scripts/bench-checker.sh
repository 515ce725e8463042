#!/usr/bin/env bash
# Benchmarks the linearizability checker (lincheck::bench): Porcupine's corpus
# (102 etcd logs and 6 kv files, single-threaded) and a generated 100k-op key-value
# history (all cores). Prints a markdown table; arguments go to `squall bench checker`.
#
# Usage: scripts/bench-checker.sh [ARGS...]   (from anywhere in a clone)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -p harness --bin squall -- bench checker "$@"
