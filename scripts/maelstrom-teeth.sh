#!/usr/bin/env bash
# Runs the Maelstrom test nodes of examples/maelstrom through `squall test` on seeds
# 1..SEEDS and prints one table row per (workload, node, nemesis): how many seeds were
# valid / invalid / unknown and the first invalid seed.
# Usage: scripts/maelstrom-teeth.sh [SEEDS] [SQUALL] [ROWS]; ROWS is all (default),
# broken (the two mutants under kill), quiet (correct nodes, no faults), faulty
# (correct nodes under partition,kill) or txn (txn-rw-register: the correct node
# without faults and under partition,kill, its two mutants without faults).
set -u
SEEDS=${1:-20}
SQUALL=${2:-target/debug/squall}
ROWS=${3:-all}
RES=$(mktemp -d)
trap 'rm -rf "$RES"' EXIT
row() { # workload node nemesis [node args...]
  local w=$1 node=$2 nem=$3; shift 3
  local valid=0 invalid=0 unknown=0 first=-
  for seed in $(seq 1 "$SEEDS"); do
    "$SQUALL" test -w "$w" --bin "examples/maelstrom/$node" --node-count 3 --time-limit 3 \
      --rate 50 --recovery-time 2s --nemesis "$nem" --seed "$seed" --results-dir "$RES" \
      -- "$@" >/dev/null 2>&1
    case $? in
      0) valid=$((valid + 1)) ;;
      1) invalid=$((invalid + 1)); [ "$first" = - ] && first=$seed ;;
      *) unknown=$((unknown + 1)) ;;
    esac
    rm -rf "${RES:?}"/*
  done
  echo "| $w | $node $* | $nem | $valid | $invalid | $unknown | $first |"
}
echo "| workload | node | nemesis | valid | invalid | unknown | first invalid seed |"
echo "|---|---|---|---|---|---|---|"
if [ "$ROWS" = all ] || [ "$ROWS" = broken ]; then
  row unique-ids unique_ids.py kill --bug per-process-counter
  row g-counter counter.py kill --bug lose-on-restart
fi
for w in "echo echo.py" "unique-ids unique_ids.py" "g-set g_set.py" "g-counter counter.py" "pn-counter counter.py"; do
  set -- $w
  if [ "$ROWS" = all ] || [ "$ROWS" = quiet ]; then row "$1" "$2" none; fi
  if [ "$ROWS" = all ] || [ "$ROWS" = faulty ]; then row "$1" "$2" partition,kill; fi
done
if [ "$ROWS" = all ] || [ "$ROWS" = txn ]; then
  row txn-rw-register txn.py none
  row txn-rw-register txn.py partition,kill
  row txn-rw-register txn.py none --bug aborted-writes
  row txn-rw-register txn.py none --bug intermediate-writes
fi
