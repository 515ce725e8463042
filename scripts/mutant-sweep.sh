#!/usr/bin/env bash
# For each Paxos mutant: sweep seeds in lockstep until a run fails, replay that run
# (lockstep must give the same trace every time), then shrink it and replay the shrunk
# run. Prints a markdown table.
#
#   scripts/mutant-sweep.sh [--seeds N] [--replays N] [--only MUTANT] [--results DIR]
#
# A mutant may have several configurations (a nemesis drawn from the seed, or a fault
# plan aimed by a trigger); they are tried in order, each over seeds 1..N, and the sweep
# stops at the first failing run. "seeds" counts every run made for the mutant. Exits 1
# if a mutant was never caught, a replay differed, or a shrunk run does not fail.
# Needs a release build (cargo build --release) and python3; SQUALL overrides the binary.
set -euo pipefail

cd "$(dirname "$0")/.."
SEEDS=200
REPLAYS=100
LIMIT_MS=5000
ONLY=""
RESULTS=$(mktemp -d /tmp/squall-mutants.XXXXXX)
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) SEEDS=$2; shift 2 ;;
        --replays) REPLAYS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        *) echo "mutant-sweep.sh: unknown argument $1" >&2; exit 254 ;;
    esac
done
SQUALL=${SQUALL:-${CARGO_TARGET_DIR:-target}/release/squall}
[ -x "$SQUALL" ] || { echo "mutant-sweep.sh: build first: cargo build --release" >&2; exit 254; }
mkdir -p "$RESULTS"

# mutant | label | squall run flags (after --mode lockstep --workload write-once
# --algorithm paxos --bug MUTANT; 5 nodes unless they say --nodes). `@plan` stands for `--schedule` with the plan `plan`
# writes.
ROWS=(
  "small-quorum|partition|--contention 3 --nemesis partition --time-limit ${LIMIT_MS}ms"
  "forget-accepted|partition,delay|--contention 3 --nemesis partition,delay --time-limit ${LIMIT_MS}ms"
  "forget-accepted|decided-late (plan)|--contention 3 @decided-late"
  "skip-fsync|bridge-promise-crash (plan)|--nodes 3 @bridge-promise-crash"
  "ack-before-sync|bridge-promise-crash (plan)|--nodes 3 @bridge-promise-crash"
  "no-promise-check|delay|--contention 3 --nemesis delay --time-limit ${LIMIT_MS}ms"
  "ballot-no-node-id|delay|--contention 3 --nemesis delay --time-limit ${LIMIT_MS}ms"
  "first-accepted-value|decided-late (plan)|--contention 3 @decided-late"
  "learn-mixed-ballots|partition,delay|--contention 3 --nemesis partition,delay --time-limit ${LIMIT_MS}ms"
)

# Writes the plan $1 (`squall plan --list`) for a run of LIMIT_MS; prints its path.
plan() {
    "$SQUALL" plan "$1" --time-limit "${LIMIT_MS}ms" --out "$RESULTS/plan-$1.json"
}

# The violated properties of the run directory $1 (comma-separated), or its verdict.
observe() {
    python3 - "$1" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1] + "/verdict.json"))
if v["verdict"] != "invalid":
    print(v["verdict"]); sys.exit()
print(",".join(sorted({c.get("evidence", {}).get("property") or c.get("checker", "?")
                       for c in v["checkers"] if c["verdict"] == "invalid"})))
EOF
}

# Fault events (partition, kill, crash, pause, clog, link_faults) in the schedule file $1.
faults() {
    python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
print(sum(e["action"] in ("partition", "kill", "crash", "pause", "clog", "link_faults") for e in s["events"]))' "$1"
}

declare -A DONE TRIED
ROWS_OUT=()
status=0
for row in "${ROWS[@]}"; do
    IFS='|' read -r mutant label flags <<<"$row"
    [ -n "$ONLY" ] && [ "$ONLY" != "$mutant" ] && continue
    [ -n "${DONE[$mutant]:-}" ] && continue
    if [[ "$flags" == *@* ]]; then
        name_of_plan=$(sed -n 's/.*@\([a-z-]*\).*/\1/p' <<<"$flags")
        flags="${flags/@$name_of_plan/--schedule $(plan "$name_of_plan")}"
    fi
    dir="$RESULTS/$mutant"
    found=""
    for seed in $(seq 1 "$SEEDS"); do
        TRIED[$mutant]=$(( ${TRIED[$mutant]:-0} + 1 ))
        # shellcheck disable=SC2086
        nodes_flag=(--nodes 5)
        [[ "$flags" == *--nodes* ]] && nodes_flag=()
        "$SQUALL" run --mode lockstep --workload write-once "${nodes_flag[@]}" --algorithm paxos \
            --bug "$mutant" --seed "$seed" --results-dir "$dir" $flags >/dev/null 2>&1 || true
        got=$(observe "$dir/latest")
        case "$got" in valid|unknown) ;; *) found=$seed; break ;; esac
    done
    if [ -z "$found" ]; then
        echo "$mutant [$label]: no failing seed in 1..$SEEDS" >&2
        continue
    fi
    DONE[$mutant]=1
    run=$(readlink -f "$dir/latest")
    echo "$mutant [$label]: seed $found fails ($got) in $run; replaying $REPLAYS times" >&2
    reproduced=$("$SQUALL" replay "$run" --times "$REPLAYS" 2>/dev/null \
        | sed -n 's/^reproduced \([0-9]*\) of .*/\1/p' || true)
    [ "$reproduced" = "$REPLAYS" ] || status=1
    echo "$mutant: shrinking" >&2
    "$SQUALL" shrink "$run" >"$run.shrink.log" 2>/dev/null || true
    before=$(faults "$run/schedule.json")
    if [ -f "$run/shrink/shrunk-schedule.json" ]; then
        after=$(faults "$run/shrink/shrunk-schedule.json")
        shrunk=$(readlink -f "$run/shrink/shrunk")
        still=$(observe "$shrunk")
        runs=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["runs"])' "$run/shrink/shrink.json")
        again=$("$SQUALL" replay "$shrunk" --times 10 2>/dev/null \
            | sed -n 's/^reproduced \([0-9]*\) of .*/\1/p' || true)
        [ "$again" = 10 ] || status=1
        [ "$after" -le 3 ] || status=1
    else
        after="?"; still="shrink failed (see $run.shrink.log)"; runs="-"; again="-"; status=1
    fi
    ROWS_OUT+=("| $mutant | $label | $found | ${TRIED[$mutant]} | $got | $reproduced/$REPLAYS | $before → $after | $runs | $still | $again/10 |")
done

echo "| mutant | faults | failing seed | seeds tried | violated | replays identical | fault events before → after shrink | shrink runs | shrunk run | shrunk replays identical |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for r in "${ROWS_OUT[@]}"; do echo "$r"; done
for m in small-quorum forget-accepted skip-fsync ack-before-sync no-promise-check ballot-no-node-id first-accepted-value learn-mixed-ballots; do
    [ -n "$ONLY" ] && [ "$ONLY" != "$m" ] && continue
    if [ -z "${DONE[$m]:-}" ]; then
        echo "| $m | (every configuration above) | none | ${TRIED[$m]:-0} | - | - | - | - | - | - |"
        status=1
    fi
done
echo
echo "runs kept in $RESULTS"
exit $status
