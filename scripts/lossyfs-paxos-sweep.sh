#!/usr/bin/env bash
# The Python Paxos node (examples/python/paxos_node.py) under `--nemesis kill` on SEEDS
# seeds, three ways: `--bug no-fsync` on --fs lossy, `--bug no-fsync` on the native fs,
# and the correct node (which fsyncs) on --fs lossy. Three nodes, 5 s runs. Prints one
# line per run and a total per configuration; caught means a safety verdict (agreement
# or stable-reads), the failures a node that forgets what it wrote can cause.
# usage: scripts/lossyfs-paxos-sweep.sh [SEEDS] [SQUALL]
set -uo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-20}
squall=${2:-target/release/squall}
out=${SWEEP_DIR:-$(mktemp -d)}
echo "runs in $out"
for cfg in "lossy|--bug no-fsync" "native|--bug no-fsync" "lossy|"; do
  fs=${cfg%%|*}
  args=${cfg#*|}
  caught=0 valid=0 other=0
  for seed in $(seq 1 "$seeds"); do
    line=$("$squall" run --nodes 3 --node-cmd "python3 examples/python/paxos_node.py $args" \
      --nemesis kill --fs "$fs" --time-limit 5s --seed "$seed" \
      --results-dir "$out/$fs${args:+-no-fsync}" 2>&1 | grep '^verdict')
    case $line in
      *"agreement violated"* | *stable-reads*) caught=$((caught + 1)) ;;
      *"VALID:"*) [[ $line == *INVALID* ]] && other=$((other + 1)) || valid=$((valid + 1)) ;;
      *) other=$((other + 1)) ;;
    esac
    echo "fs $fs [${args:-correct}] seed $seed: ${line#verdict   }" | cut -c1-150
  done
  echo "fs $fs, ${args:-correct}: caught $caught, valid $valid, other $other, of $seeds seeds"
done
