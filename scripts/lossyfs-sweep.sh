#!/usr/bin/env bash
# The restart counter (examples/python/restart_counter.py) under `--nemesis kill` on
# SEEDS seeds, three ways: without fsync on the native fs, without fsync on --fs lossy,
# with fsync on --fs lossy. Prints one line per configuration: valid / invalid / other.
# CONFIG bundled-auto (not part of the default three): the bundled nodes with every flag
# at its default (write-once, Paxos, --nemesis all, so --fs auto mounts where FUSE is
# usable), 10 s runs; the line also counts the runs that were on the lossy mount.
# usage: scripts/lossyfs-sweep.sh [SEEDS] [SQUALL] [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-20}
squall=${2:-target/release/squall}
node="python3 examples/python/restart_counter.py"
out=${SWEEP_DIR:-$(mktemp -d)}
echo "runs in $out"
sweep() {
  local name=$1 fs=$2 args=$3 valid=0 invalid=0 other=0 caught=""
  for seed in $(seq 1 "$seeds"); do
    rc=0
    "$squall" run --workload durability --nodes 3 --node-cmd "$node $args" \
      --nemesis kill --time-limit 5s --seed "$seed" --fs "$fs" \
      --results-dir "$out/$name" >/dev/null 2>&1 || rc=$?
    case $rc in
      0) valid=$((valid+1));;
      1) invalid=$((invalid+1)); caught="$caught $seed";;
      *) other=$((other+1));;
    esac
  done
  echo "$name: $valid valid, $invalid invalid (seeds:$caught), $other other, of $seeds seeds"
}
bundled_auto() {
  local valid=0 invalid=0 other=0 lossy=0 caught=""
  for seed in $(seq 1 "$seeds"); do
    rc=0
    "$squall" run --time-limit 10s --seed "$seed" --results-dir "$out/bundled-auto" \
      >/dev/null 2>&1 || rc=$?
    case $rc in
      0) valid=$((valid+1));;
      1) invalid=$((invalid+1)); caught="$caught $seed";;
      *) other=$((other+1));;
    esac
    grep -q '"kind": *"lossy"' "$out/bundled-auto/latest/metrics.json" 2>/dev/null &&
      lossy=$((lossy+1))
  done
  echo "bundled-auto: $valid valid, $invalid invalid (seeds:$caught), $other other, of $seeds seeds; $lossy on the lossy mount"
}
only=${3:-all}
[[ $only == all || $only == no-fsync-native ]] && sweep no-fsync-native native ""
[[ $only == all || $only == no-fsync-lossy ]] && sweep no-fsync-lossy lossy ""
[[ $only == all || $only == fsync-lossy ]] && sweep fsync-lossy lossy "--fsync"
[[ $only == bundled-auto ]] && bundled_auto
exit 0
