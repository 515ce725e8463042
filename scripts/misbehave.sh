#!/usr/bin/env bash
# One badly behaved node per row, each run to its end: does every bound hold?
#
#   scripts/misbehave.sh [--time-limit 10s] [--recovery 5s] [--results DIR] [ROW...]
#
# Each row is a mode of harness/tests/nodes/bad.py (node n1 misbehaves): unknown-dest,
# harness-reports, many-types, long-types, flood-peer, pre-hello, never-answers, forks,
# exits. Flood rows run the echo workload on three Python nodes; never-answers, forks
# and exits run the default write-once workload with n2.. as real paxos nodes. For each
# row it measures the harness's peak RSS (/usr/bin/time -v), the size of every file in
# the run directory, the wall time against time limit + recovery, the verdict, and
# whether any process the run started is still alive afterwards; it prints a markdown
# table. Goals: peak RSS < 256 MiB, run dir < 64 MiB, wall <= limit + recovery + 10 s,
# nothing left over. Exits 1 if a row misses a goal. Uses the release build in
# ${CARGO_TARGET_DIR:-target} (build first: cargo build --release -p harness -p node).
set -uo pipefail

cd "$(dirname "$0")/.."
LIMIT=10s
RECOVERY=5s
RESULTS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --time-limit) LIMIT=$2; shift 2 ;;
        --recovery) RECOVERY=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        -*) echo "misbehave.sh: unknown argument $1" >&2; exit 254 ;;
        *) break ;;
    esac
done
ROWS=("$@")
[ ${#ROWS[@]} -gt 0 ] || ROWS=(unknown-dest harness-reports many-types long-types flood-peer
                               pre-hello never-answers forks exits)
[ -n "$RESULTS" ] || RESULTS=$(mktemp -d /tmp/squall-misbehave.XXXXXX)
case "$RESULTS" in /*) ;; *) RESULTS="$PWD/$RESULTS" ;; esac
BIN=${SQUALL_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
SQUALL=$BIN/squall
NODE=$BIN/squall-node
[ -x "$SQUALL" ] && [ -x "$NODE" ] || {
    echo "misbehave.sh: build first: cargo build --release -p harness -p node" >&2
    exit 254
}
BAD=$PWD/harness/tests/nodes/bad.py
secs() { # 10s / 500ms / 2m -> seconds
    case "$1" in
        *ms) echo "scale=3; ${1%ms}/1000" | bc ;;
        *s) echo "${1%s}" ;;
        *m) echo "${1%m}*60" | bc ;;
        *) echo "$1" ;;
    esac
}
BUDGET=$(echo "$(secs "$LIMIT") + $(secs "$RECOVERY") + 10" | bc)
FAILED=0

echo "| row | peak RSS MiB | run dir MiB | files (KiB) | wall s (budget) | verdict | left over |"
echo "|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    out=$RESULTS/$row
    mkdir -p "$out"
    case "$row" in
        never-answers|forks|exits)
            args=(--node-cmd "python3 $BAD $row $NODE --algorithm paxos") ;;
        *)
            args=(--workload echo --node-cmd "python3 $BAD $row") ;;
    esac
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$out/time.txt" "$SQUALL" run "${args[@]}" --nodes 3 \
        --nemesis none --time-limit "$LIMIT" --recovery-time "$RECOVERY" --seed 1 \
        --results-dir "$out/results" >"$out/stdout.txt" 2>"$out/stderr.txt"
    code=$?
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    run=$(readlink -f "$out/results/latest" 2>/dev/null || echo "$out/results")
    rss_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out/time.txt")
    rss=$(( ${rss_kib:-0} / 1024 ))
    dir_kib=$(du -sk --exclude=data "$run" 2>/dev/null | cut -f1)
    dir=$(( ${dir_kib:-0} / 1024 ))
    files=$(cd "$run" 2>/dev/null && find . -path ./data -prune -o -type f -printf '%P=%k ' | sort)
    verdict=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' \
        "$run/verdict.json" 2>/dev/null || echo "none (exit $code)")
    # Anything carrying this run's data directory or pid file still alive?
    left=0
    if [ -f "$run/data/n1/forked.pids" ]; then
        while read -r pid; do
            kill -0 "$pid" 2>/dev/null && left=$((left + 1))
        done <"$run/data/n1/forked.pids"
    fi
    left=$((left + $(pgrep -f "$BAD $row" | wc -l)))
    ok=yes
    [ "$rss" -lt 256 ] || ok=no
    [ "$dir" -lt 64 ] || ok=no
    [ "$(echo "$wall <= $BUDGET" | bc)" = 1 ] || ok=no
    [ "$left" = 0 ] || ok=no
    [ "$ok" = yes ] || FAILED=1
    printf '| %s | %s | %s | %s | %.1f (%s) | %s | %s |\n' \
        "$row" "$rss" "$dir" "$files" "$wall" "$BUDGET" "$verdict" "$left"
done
echo
echo "results: $RESULTS"
exit $FAILED
