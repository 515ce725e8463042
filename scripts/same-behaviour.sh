#!/usr/bin/env bash
# Records what a squall binary does for a fixed set of seeds, so two builds can be
# compared: the fault schedule and configuration a free-running run writes
# (`schedule.json`, `run.json` without its paths and version), and the lockstep run's
# `trace_hash`, `history.jsonl` hash and printed summary (without the run id and path).
#
#   scripts/same-behaviour.sh BIN_DIR OUT_DIR [SEEDS]
#
# BIN_DIR holds `squall` and `squall-node`. Run it for two builds and compare with
# `diff -r OUT_A OUT_B` (the `results` folders inside are scratch and differ).
set -euo pipefail
bin_dir=${1:?usage: same-behaviour.sh BIN_DIR OUT_DIR [SEEDS]}
out=${2:?usage: same-behaviour.sh BIN_DIR OUT_DIR [SEEDS]}
seeds=${3:-20}
squall="$bin_dir/squall"
export SQUALL_NODE_BIN="$bin_dir/squall-node"
mkdir -p "$out/free" "$out/lockstep" "$out/results"

# run.json without what names the machine or the build.
strip_run_json() {
    python3 -c 'import json,sys
c=json.load(open(sys.argv[1]))
for k in ("results_dir","node_bin","version"): c.pop(k,None)
print(json.dumps(c,indent=1,sort_keys=True))' "$1"
}

for seed in $(seq 1 "$seeds"); do
    res="$out/results/free-$seed"
    "$squall" run --seed "$seed" --nodes 3 --rate 50 --time-limit 3s --recovery-time 1s \
        --nemesis all --nemesis-interval 300ms --results-dir "$res" >/dev/null 2>&1 || true
    dir=$(find "$res" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    cp "$dir/schedule.json" "$out/free/$seed.schedule.json"
    strip_run_json "$dir/run.json" >"$out/free/$seed.run.json"

    res="$out/results/lockstep-$seed"
    "$squall" run --mode lockstep --seed "$seed" --nodes 3 --rate 40 --time-limit 3s \
        --recovery-time 2s --nemesis all --nemesis-interval 400ms --results-dir "$res" \
        2>/dev/null | grep -v '^run \|^results ' >"$out/lockstep/$seed.summary" || true
    dir=$(find "$res" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trace_hash"])' \
        "$dir/verdict.json" >"$out/lockstep/$seed.trace_hash"
    sha256sum <"$dir/history.jsonl" | cut -d' ' -f1 >"$out/lockstep/$seed.history.sha256"
    cp "$dir/schedule.json" "$out/lockstep/$seed.schedule.json"
    echo "seed $seed: lockstep trace $(cat "$out/lockstep/$seed.trace_hash")"
done
