#!/usr/bin/env bash
# Benchmarks the linearizability checker (lincheck::bench): Porcupine's corpus
# (102 etcd logs and 6 kv files, single-threaded) and a generated 100k-op key-value
# history (all cores). Prints a markdown table; arguments go to `squall bench checker`.
# With --family (crashed-writes, crashed-proposes, kv, kv-strings) it generates and
# checks that family of crashed-op histories at each of --sizes instead; see
# docs/checker.md.
#
# Usage: scripts/bench-checker.sh [ARGS...]   (from anywhere in a clone)
#        scripts/bench-checker.sh --family kv --sizes 1000000 --info-percent 5
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -p harness --bin squall -- bench checker "$@"
