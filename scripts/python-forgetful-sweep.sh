#!/usr/bin/env bash
# How many seeds catch the Python Paxos node's forgetful acceptor (--bug memory-acceptor)
# under kill faults, with the default share of late proposals and with none.
#
#   scripts/python-forgetful-sweep.sh [SEEDS] [MODE] [EXTRA squall run flags...]
#
# SEEDS defaults to 20, MODE to lockstep (or free). Prints one line per run and a
# total per setting; only agreement and stable-reads violations count as caught (a
# termination failure is not what this bug breaks). Run directories are kept under a
# fresh temporary directory, printed at the end. SQUALL overrides the binary (default
# target/release/squall).
set -u
cd "$(dirname "$0")/.."
seeds=${1:-20}
mode=${2:-lockstep}
shift $(( $# < 2 ? $# : 2 ))
squall=${SQUALL:-target/release/squall}
out=$(mktemp -d)
for late in 10 0; do
  caught=0
  for seed in $(seq 1 "$seeds"); do
    line=$("$squall" run --mode "$mode" --node-cmd "python3 examples/python/paxos_node.py --bug memory-acceptor" \
      --nemesis kill --late-proposals "$late" --time-limit 5s --seed "$seed" --results-dir "$out" "$@" 2>&1 |
      grep '^verdict')
    # Caught means a safety verdict: two decided values, or a node taking one back.
    case $line in *"agreement violated"* | *stable-reads*) caught=$((caught + 1)) ;; esac
    echo "late-proposals $late seed $seed: ${line#verdict   }" | cut -c1-160
  done
  echo "late-proposals $late: caught on $caught of $seeds seeds"
done
echo "runs in $out"
