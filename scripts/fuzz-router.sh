#!/usr/bin/env bash
# Mutated frames at the router for a while: does it stay up, bounded and panic-free?
#
#   scripts/fuzz-router.sh [--duration 10m] [--seed N] [--results DIR]
#
# One `squall run --workload echo` of three Python nodes where n1 (harness/tests/nodes/
# bad.py, mode fuzz) sends mutated envelopes on its admitted connection (bit flips, cuts,
# splices, JSON tokens, invalid UTF-8, deep nesting, long strings; 64 per write) and now
# and then a mutated hello on a fresh connection, for --duration. Samples the harness's
# VmRSS every second; prints frames sent, panics (a "panicked" line in the harness's
# stderr, or exit 101), peak RSS and the exit code. Exits 1 on a panic or an exit code
# other than 0, 1 or 2. Uses the release build in ${CARGO_TARGET_DIR:-target}, or $SQUALL.
set -uo pipefail

cd "$(dirname "$0")/.."
DURATION=10m
SEED=1
RESULTS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        *) echo "fuzz-router.sh: unknown argument $1" >&2; exit 254 ;;
    esac
done
[ -n "$RESULTS" ] || RESULTS=$(mktemp -d /tmp/squall-fuzz.XXXXXX)
case "$RESULTS" in /*) ;; *) RESULTS="$PWD/$RESULTS" ;; esac
SQUALL=${SQUALL:-${CARGO_TARGET_DIR:-target}/release/squall}
[ -x "$SQUALL" ] || { echo "fuzz-router.sh: build first: cargo build --release -p harness" >&2; exit 254; }
mkdir -p "$RESULTS"

"$SQUALL" run --workload echo --node-cmd "python3 $PWD/harness/tests/nodes/bad.py fuzz" \
    --nodes 3 --nemesis none --time-limit "$DURATION" --recovery-time 1s --seed "$SEED" \
    --results-dir "$RESULTS/results" >"$RESULTS/stdout.txt" 2>"$RESULTS/stderr.txt" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 1
done
wait "$pid"
code=$?
run=$(readlink -f "$RESULTS/results/latest")
frames=$(cat "$run/data/n1/fuzz.count" 2>/dev/null || echo "?")
panics=$(grep -c panicked "$RESULTS/stderr.txt")
[ "$code" = 101 ] && panics=$((panics + 1))
verdict=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' \
    "$run/verdict.json" 2>/dev/null || echo none)
echo "duration     $DURATION (seed $SEED)"
echo "frames sent  $frames"
echo "panics       $panics"
echo "peak RSS     $((peak / 1024)) MiB"
echo "exit code    $code (verdict $verdict)"
echo "run dir      $(du -sh --exclude=data "$run" | cut -f1) $run"
[ "$panics" = 0 ] && [ "$code" -le 2 ]
