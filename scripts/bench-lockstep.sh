#!/usr/bin/env bash
# Lockstep throughput: how many seeds of a short faulty run squall gets through per
# minute per core. Default: five-node write-once paxos, 3 s of virtual time with
# partitions, kills, drops and delays, 1 s recovery, final reads; 200 seeds, two runs per
# core at a time (a run waits on its nodes' fsyncs; the other run fills that time).
# Reports seeds per wall-clock minute (and per core) and seeds per CPU-minute (harness
# plus every node process), then, in the same run, the floor: a loopback TCP ping-pong of
# a step-sized line, and steps per CPU-second as a percentage of its round trips per
# CPU-second. Results go to the system temp dir unless --results-dir; the nodes' data
# (where they fdatasync) goes with them unless --data-dir (e.g. /dev/shm for tmpfs).
# Build with a release harness and release nodes.
#
# Usage: scripts/bench-lockstep.sh [--seeds N] [--jobs J] [--first-seed S]
#          [--run "squall run flags"] [--nemesis kinds] [--interval-ms MS]
#          [--recovery-ms MS] [--data-dir DIR] [--keep --results-dir DIR]
#          [--out report.json]
set -euo pipefail
cd "$(dirname "$0")/.."

while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) export SQUALL_BENCH_SEEDS="$2"; shift 2 ;;
    --jobs) export SQUALL_BENCH_JOBS="$2"; shift 2 ;;
    --first-seed) export SQUALL_BENCH_FIRST_SEED="$2"; shift 2 ;;
    --run) export SQUALL_BENCH_RUN="$2"; shift 2 ;;
    --nemesis) export SQUALL_BENCH_NEMESIS="$2"; shift 2 ;;
    --interval-ms) export SQUALL_BENCH_INTERVAL_MS="$2"; shift 2 ;;
    --recovery-ms) export SQUALL_BENCH_RECOVERY_MS="$2"; shift 2 ;;
    --data-dir) export SQUALL_BENCH_DATA_DIR="$(realpath -m "$2")"; shift 2 ;;
    --keep) export SQUALL_BENCH_KEEP=1; shift ;;
    --results-dir) export SQUALL_BENCH_RESULTS="$(realpath -m "$2")"; shift 2 ;;
    --out) export SQUALL_BENCH_OUT="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-lockstep.sh: unknown option $1 (see --help)" >&2; exit 254 ;;
  esac
done

target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p node --bin squall-node
export SQUALL_NODE_BIN="$(realpath "$target/release/squall-node")"
cargo test --release -q -p harness --test lockstep_bench -- --ignored --nocapture \
  bench_lockstep 2>&1 | grep -Ev '^(running [0-9]+ tests?|test result:.*|test bench_lockstep.*|squall: run .*|\.|)$'
