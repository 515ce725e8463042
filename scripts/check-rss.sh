#!/usr/bin/env bash
# Peak RSS of `squall check` on generated histories (scripts/gen-history.py): for each
# workload and size, the history is checked by the run's own checkers (in its run
# directory) and by lincheck alone (a copy outside it). Prints a markdown table.
#
#   scripts/check-rss.sh [MB...]        (default: 30 100)
#
# Uses the release build in ${CARGO_TARGET_DIR:-target} (cargo build --release -p harness).
set -euo pipefail
cd "$(dirname "$0")/.."
SQUALL=${CARGO_TARGET_DIR:-target}/release/squall
[ -x "$SQUALL" ] || { echo "check-rss.sh: build first: cargo build --release -p harness" >&2; exit 254; }
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(30 100)
WORK=$(mktemp -d /tmp/squall-check-rss.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "| workload | history MB | checked by | verdict | peak RSS MiB | RSS / size | wall s |"
echo "|---|---|---|---|---|---|---|"
for mb in "${SIZES[@]}"; do
    for w in write-once lin-kv; do
        dir=$WORK/$w-$mb
        python3 scripts/gen-history.py --workload "$w" --mb "$mb" --out "$dir" >/dev/null
        cp "$dir/history.jsonl" "$WORK/$w-$mb.jsonl"
        size=$(stat -c %s "$dir/history.jsonl")
        for how in run lincheck; do
            f=$dir/history.jsonl
            [ "$how" = run ] || f=$WORK/$w-$mb.jsonl
            verdict=$(/usr/bin/time -f "%M %e" -o "$WORK/time" "$SQUALL" check "$f" | cut -f2 || true)
            read -r kib secs < "$WORK/time"
            echo "| $w | $(echo "scale=1; $size/1000000" | bc) | $how | $verdict | $((kib / 1024)) | $(echo "scale=1; $kib*1024/$size" | bc) | $secs |"
        done
        rm -rf "$dir" "$WORK/$w-$mb.jsonl"
    done
done
