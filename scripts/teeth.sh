#!/usr/bin/env bash
# The teeth matrix: every bundled consensus algorithm and Paxos mutant, run on real
# processes under the faults it needs, seed after seed, until it fails the way the seeds
# predict (or, for the safe ones, on every seed). Prints a markdown table.
#
#   scripts/teeth.sh [--seeds N] [--time-limit 5s] [--only NAME] [--results DIR]
#
# A row expecting a failure stops at the first seed that shows it; "seeds" is how many it
# took. A row expecting `valid` runs every seed and must stay valid on all of them. Any
# other outcome (a different violation, or none within N seeds) is marked MISMATCH and
# the script exits 1. Needs a release build (cargo build --release) and python3.
set -euo pipefail

cd "$(dirname "$0")/.."
SEEDS=20
LIMIT=5s
ONLY=""
RESULTS=$(mktemp -d /tmp/squall-teeth.XXXXXX)
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) SEEDS=$2; shift 2 ;;
        --time-limit) LIMIT=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        *) echo "teeth.sh: unknown argument $1" >&2; exit 254 ;;
    esac
done
mkdir -p "$RESULTS"
SQUALL=${SQUALL:-${CARGO_TARGET_DIR:-target}/release/squall}
[ -x "$SQUALL" ] || { echo "teeth.sh: build first: cargo build --release" >&2; exit 254; }

# name | expected | squall run flags (5 nodes unless they say --nodes; free-running unless
# they say --mode lockstep). `@plan` stands for
# `--schedule` with a plan that `plan` below writes: the fault a mutant needs, aimed by a
# trigger or a message type; `@plan:bundled=theirs` renames the message type the plan aims
# at (`squall plan --msg-type`), for algorithms whose messages have other names. A control
# row runs the correct algorithm under a mutant's plan: the plan alone must not break it.
# Rows that name no `--workload` run write-once. `scripts/plans/*.json` are fixed
# schedules: accept-loss-leader-kills drops half of all `accept`s and kills each node as
# it sends its 40th, 80th, .. `accept` (only a leader sends them), so leaders die with
# slots accepted out of order; isolate-leader-heartbeat (and -append, for raft) clogs
# whichever node sends the first `heartbeat` (`append_entries`) after 1 s, 3.5 s, 6 s and
# 8.5 s for 2 s each: the leader of the moment, cut off while clients still reach it;
# figure8-old-term-commit plays the paper's Figure 8 on 3 nodes by dropping
# `request_vote` from all but the node meant to win and `append_entries` as each phase
# needs: n1 leads and appends alone, n2 leads and appends alone, n1 leads again and
# reaches n3 exactly once (a trigger closes the link at n3's second `append_ok`), n2 leads
# again and, once the links heal, overwrites what n1 sent (twice in 20 s). Clients are
# many and slow (48 at 20 ops/s, 5 s timeout) so that some requests wait on n1 from the
# first phase to the third while others reach n2 in the second.
# slots accepted out of order. sequencer-crash crashes n1 (total-sequencer's sequencer)
# for good 1.5 s into a 5 s run.
ROWS=(
  "coordinator|no termination|--algorithm coordinator --nemesis crash --contention 1"
  "majority-vote|no termination|--algorithm majority-vote --nemesis delay --clients 3 --contention 3"
  "tiebreak-wait-all|no termination|--algorithm tiebreak-wait-all --nemesis crash,delay --nemesis-interval 500ms --contention 3"
  "tiebreak-timeout|disagreement|--algorithm tiebreak-timeout --nemesis delay --delay 200ms --delay-jitter 400ms --contention 3"
  "floodset|disagreement|--algorithm floodset --nemesis delay --delay 150ms --delay-jitter 300ms --contention 3"
  "paxos|valid|--algorithm paxos --nemesis all --contention 3"
  "paxos --bug no-backoff|valid|--algorithm paxos --bug no-backoff --nemesis all --contention 3"
  "paxos --bug small-quorum|disagreement|--algorithm paxos --bug small-quorum --nemesis partition --contention 3"
  "paxos --bug forget-accepted|disagreement|--algorithm paxos --bug forget-accepted --contention 3 @decided-late"
  "paxos --bug skip-fsync|disagreement|--algorithm paxos --bug skip-fsync --nodes 3 @bridge-promise-crash"
  "paxos (control)|valid|--algorithm paxos --nodes 3 @bridge-promise-crash"
  "paxos --bug ack-before-sync|disagreement|--algorithm paxos --bug ack-before-sync --nodes 3 --mode lockstep @bridge-promise-crash"
  "paxos (control, lockstep)|valid|--algorithm paxos --nodes 3 --mode lockstep @bridge-promise-crash"
  "paxos --bug no-promise-check|disagreement|--algorithm paxos --bug no-promise-check --nemesis delay --contention 3"
  "paxos --bug ballot-no-node-id|disagreement|--algorithm paxos --bug ballot-no-node-id --nemesis delay --contention 3"
  "paxos --bug first-accepted-value|disagreement|--algorithm paxos --bug first-accepted-value --nodes 3 --contention 3 @bridge-accept-lost"
  "paxos (control, accept-lost)|valid|--algorithm paxos --nodes 3 --contention 3 @bridge-accept-lost"
  "paxos --bug learn-mixed-ballots|disagreement|--algorithm paxos --bug learn-mixed-ballots --contention 3 @accepts-lossy"
  "paxos --bug forget-learned|stable-reads|--algorithm paxos --bug forget-learned --nemesis kill"
  "paxos (crash-stop)|valid|--algorithm paxos --nemesis crash --contention 3"
  "coordinator --bug failover|disagreement|--algorithm coordinator --bug failover --nemesis partition,pause --contention 3"
  "raft|valid|--workload lin-kv --algorithm raft --nemesis all"
  "raft --bug stale-read|invalid linearizability|--workload lin-kv --algorithm raft --bug stale-read --nemesis partition"
  "raft --bug vote-any-log|invalid linearizability|--workload lin-kv --algorithm raft --bug vote-any-log --nemesis partition"
  "raft --bug no-sync-vote|invalid linearizability|--workload lin-kv --algorithm raft --bug no-sync-vote --nodes 3 @bridge-promise-crash:promise=vote"
  "raft (control, vote-crash)|valid|--workload lin-kv --algorithm raft --nodes 3 @bridge-promise-crash:promise=vote"
  "raft --bug ack-before-sync|invalid linearizability|--workload lin-kv --algorithm raft --bug ack-before-sync --nodes 3 --mode lockstep @bridge-promise-crash:promise=append_ok"
  "raft (control, ack-crash, lockstep)|valid|--workload lin-kv --algorithm raft --nodes 3 --mode lockstep @bridge-promise-crash:promise=append_ok"
  "raft --bug commit-old-term|invalid linearizability|--workload lin-kv --algorithm raft --bug commit-old-term --nodes 3 --clients 48 --rate 20 --op-timeout 5s --schedule scripts/plans/figure8-old-term-commit.json"
  "raft (control, Figure 8)|valid|--workload lin-kv --algorithm raft --nodes 3 --clients 48 --rate 20 --op-timeout 5s --schedule scripts/plans/figure8-old-term-commit.json"
  "multi-paxos|valid|--workload lin-kv --algorithm multi-paxos --nemesis all"
  "multi-paxos --bug skip-phase1|invalid linearizability|--workload lin-kv --algorithm multi-paxos --bug skip-phase1 --nemesis partition"
  "multi-paxos --bug no-hole-fill|no termination|--workload lin-kv --algorithm multi-paxos --bug no-hole-fill --schedule scripts/plans/accept-loss-leader-kills.json"
  "multi-paxos (control, accept-loss kills)|valid|--workload lin-kv --algorithm multi-paxos --schedule scripts/plans/accept-loss-leader-kills.json"
  "multi-paxos --bug leader-local-read|invalid linearizability|--workload lin-kv --algorithm multi-paxos --bug leader-local-read --schedule scripts/plans/isolate-leader-heartbeat.json"
  "multi-paxos (control, isolated leaders)|valid|--workload lin-kv --algorithm multi-paxos --schedule scripts/plans/isolate-leader-heartbeat.json"
  "best-effort (order fifo)|invalid fifo|--workload multicast --algorithm best-effort --order fifo --nemesis reorder"
  "fifo (order causal)|invalid causal|--workload multicast --algorithm fifo --order causal --nemesis delay --delay 1ms --delay-jitter 100ms"
  "causal (order causal-total)|invalid total|--workload multicast --algorithm causal --order causal-total --nemesis delay"
  "total-sequencer --reliable|invalid reliable-validity|--workload multicast --algorithm total-sequencer --reliable --schedule scripts/plans/sequencer-crash.json"
  "fifo --bug no-holdback|invalid fifo|--workload multicast --algorithm fifo --bug no-holdback --nemesis reorder"
  "causal --bug deliver-early|invalid causal|--workload multicast --algorithm causal --bug deliver-early --nemesis delay"
  "fifo|valid|--workload multicast --algorithm fifo --nemesis delay,reorder,duplicate,clog,pause"
  "causal|valid|--workload multicast --algorithm causal --nemesis delay,reorder,duplicate,clog,pause"
  "total-sequencer|valid|--workload multicast --algorithm total-sequencer --nemesis delay,reorder,duplicate,clog,pause"
  "total-isis|valid|--workload multicast --algorithm total-isis --nemesis delay,reorder,duplicate,clog,pause"
  "reliable|valid|--workload multicast --algorithm reliable --nemesis crash,delay,reorder,duplicate,clog,pause"
  "reliable (control, sequencer crash)|valid|--workload multicast --algorithm reliable --schedule scripts/plans/sequencer-crash.json"
  "chandy-lamport|valid|--workload bank --algorithm chandy-lamport --nemesis clog,delay,pause"
  "chandy-lamport (reorder)|snapshot-total|--workload bank --algorithm chandy-lamport --nemesis reorder"
  "chandy-lamport --bug no-channel-state|snapshot-total|--workload bank --algorithm chandy-lamport --bug no-channel-state --nemesis delay"
  "chandy-lamport --bug late-record|snapshot-total|--workload bank --algorithm chandy-lamport --bug late-record --nemesis delay"
  "wait-for|valid|--workload deadlock --algorithm wait-for --nemesis clog,delay,pause"
  "wait-for --bug local-view|invalid phantom-deadlock|--workload deadlock --algorithm wait-for --bug local-view --nemesis delay"
)

# Writes the plan $1 (`squall plan --list`, optionally `name:bundled=theirs`) for a run
# of $2 ms; prints its path.
plan() {
    local name=${1%%:*} rename=()
    [[ "$1" == *:* ]] && rename=(--msg-type "${1#*:}")
    "$SQUALL" plan "$name" "${rename[@]}" --time-limit "${2}ms" --out "$RESULTS/plan-${1//[:=]/-}.json"
}

# Prints the observed outcome of the run directory $1: valid, unknown, no termination,
# disagreement, invalid validity.
observe() {
    python3 - "$1" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1] + "/verdict.json"))
if v["verdict"] != "invalid":
    print(v["verdict"]); sys.exit()
props = {c.get("evidence", {}).get("property") for c in v["checkers"] if c["verdict"] == "invalid"}
print("disagreement" if "agreement" in props else
      "stable-reads" if any("stable" in (p or "") for p in props) else
      "no termination" if "termination" in props else
      "snapshot-total" if "snapshot-total" in {p for c in v["checkers"] for p in c.get("evidence", {}).get("properties", [])} else
      "invalid " + ",".join(sorted(p or "?" for p in props)))
EOF
}

echo "| algorithm | nemesis | mode | expected | observed | seeds | first failing seed |"
echo "|---|---|---|---|---|---|---|"
status=0
for row in "${ROWS[@]}"; do
    IFS='|' read -r name expected flags <<<"$row"
    [ -n "$ONLY" ] && [ "$ONLY" != "$name" ] && continue
    nemesis=$(sed -n 's/.*--nemesis \([^ ]*\).*/\1/p; s/.*@\([a-z_:=-]*\).*/\1 (plan)/p' <<<"$flags")
    mode=free-running
    [[ "$flags" == *"--mode lockstep"* ]] && mode=lockstep
    if [[ "$flags" == *@* ]]; then
        name_of_plan=$(sed -n 's/.*@\([a-z_:=-]*\).*/\1/p' <<<"$flags")
        limit_ms=$(python3 -c "import sys; v=sys.argv[1]; print(int(float(v[:-2])) if v.endswith('ms') else int(float(v[:-1])*1000))" "$LIMIT")
        flags="${flags/@$name_of_plan/--schedule $(plan "$name_of_plan" "$limit_ms")}"
    fi
    observed=""; seeds=0; first="-"; others=""
    for seed in $(seq 1 "$SEEDS"); do
        seeds=$seed
        # shellcheck disable=SC2086
        limit_flag=(--time-limit "$LIMIT")
        [[ "$flags" == *--schedule* ]] && limit_flag=()
        nodes_flag=(--nodes 5)
        [[ "$flags" == *--nodes* ]] && nodes_flag=()
        workload_flag=(--workload write-once)
        [[ "$flags" == *--workload* ]] && workload_flag=()
        "$SQUALL" run "${workload_flag[@]}" "${nodes_flag[@]}" "${limit_flag[@]}" --seed "$seed" \
            --results-dir "$RESULTS" $flags >/dev/null 2>&1 || true
        got=$(observe "$RESULTS/latest")
        if [ "$expected" = valid ]; then
            if [ "$got" != valid ]; then observed=$got; first=$seed; break; fi
            observed=valid
        else
            if [ "$got" = "$expected" ]; then observed=$got; first=$seed; break; fi
            [ "$got" != valid ] && others="$others $got(s$seed)"
            observed="not caught${others:+:$others}"
        fi
    done
    mark=""
    [ "$observed" = "$expected" ] || { mark=" MISMATCH"; status=1; }
    echo "| $name | $nemesis | $mode | $expected | $observed$mark | $seeds | $first |"
done
echo
echo "runs kept in $RESULTS"
exit $status
