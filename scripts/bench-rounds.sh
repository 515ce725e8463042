#!/usr/bin/env bash
# Paxos rounds to decision over the default grid (nodes 3,5 × k 1,2,3,5,8 × backoff
# exp-random,fixed,none × drop 0,0.05), 5 s per cell; table on stdout, the cells in
# results/bench-rounds.json (unless --json names another file), the plot in
# results/bench-rounds-<stamp>/rounds.svg.
# Usage: scripts/bench-rounds.sh [squall bench rounds flags]
#   e.g. scripts/bench-rounds.sh --data-dir /dev/shm/squall-data --json results/bench-rounds-tmpfs.json
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p harness -p node
json=(--json results/bench-rounds.json)
for a in "$@"; do
  [[ "$a" == --json || "$a" == --json=* ]] && json=()
done
exec "$target/release/squall" bench rounds "${json[@]}" "$@"
