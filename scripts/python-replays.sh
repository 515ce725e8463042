#!/usr/bin/env bash
# The Python Paxos node (examples/python/paxos_node.py) in lockstep under faults: runs
# seeds 1..N, replays each run once with `squall replay`, and counts the replays whose
# trace hash is identical to the run's. Prints one line per seed and a total; exits 1
# unless every replay reproduced.
#
#   scripts/python-replays.sh [SEEDS] [--nemesis KINDS] [--time-limit T] [--nodes N]
#
# SQUALL (default: target/release/squall) is the squall binary; RESULTS (default: a
# temp dir, removed at the end) holds the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=100
nemesis=partition,kill,pause,drop,delay,duplicate,reorder
time_limit=2s
nodes=3
while [ $# -gt 0 ]; do
  case "$1" in
    --nemesis) nemesis="$2"; shift 2 ;;
    --time-limit) time_limit="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) seeds="$1"; shift ;;
  esac
done
squall="${SQUALL:-${CARGO_TARGET_DIR:-target}/release/squall}"
results="${RESULTS:-}"
if [ -z "$results" ]; then
  results=$(mktemp -d)
  trap 'rm -rf "$results"' EXIT
fi
same=0 valid=0
start=$(date +%s)
for seed in $(seq 1 "$seeds"); do
  res="$results/seed-$seed"
  "$squall" run --mode lockstep --node-cmd "python3 examples/python/paxos_node.py" \
    --nodes "$nodes" --nemesis "$nemesis" --time-limit "$time_limit" --seed "$seed" \
    --results-dir "$res" >/dev/null 2>&1 || true
  dir=$(find "$res" -mindepth 1 -maxdepth 1 -type d ! -name latest | head -n 1)
  verdict=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["verdict"], v["trace_hash"])' "$dir/verdict.json")
  if "$squall" replay "$dir" --diff >"$res/replay.txt" 2>&1; then
    same=$((same + 1)); how=identical
  else
    how="DIFFERENT: $(grep -m1 'first difference' "$res/replay.txt" || tail -n 1 "$res/replay.txt")"
  fi
  case "$verdict" in valid*) valid=$((valid + 1)) ;; esac
  echo "seed $seed: $verdict, replay $how"
done
echo "python paxos lockstep ($nodes nodes, --nemesis $nemesis, --time-limit $time_limit):" \
  "$same/$seeds replays identical, $valid/$seeds valid, $(( $(date +%s) - start )) s"
[ "$same" -eq "$seeds" ]
