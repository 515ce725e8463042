#!/usr/bin/env bash
# A soak whose memory, disk and processes are watched: does squall stay flat over hours?
#
#   scripts/soak-rss.sh [--duration 10m] [--every 30] [--results DIR] [-- SOAK FLAGS...]
#
# Runs `squall soak --duration D --max-disk 2GiB --results-dir DIR` plus SOAK FLAGS
# (default: --jobs 1 --time-limit 10s, i.e. five paxos nodes, write-once, --nemesis all),
# samples the harness's VmRSS and thread count every --every seconds into DIR/rss.tsv and
# the disk used by DIR/runs, then prints RSS after the first minute against RSS at the
# end, the peak disk use, the soak's headline and rate, and any squall-node left over.
# Exits 1 if the end RSS is more than 10% above the first-minute RSS, the disk bound was
# exceeded or a node process outlived the soak; otherwise the soak's own exit code (0,
# or 1/2 if runs failed). Uses the release build in ${CARGO_TARGET_DIR:-target}.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=10m
EVERY=30
RESULTS=""
MAX_DISK=2GiB
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --every) EVERY=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "soak-rss.sh: unknown argument $1" >&2; exit 254 ;;
    esac
done
FLAGS=("$@")
[ ${#FLAGS[@]} -gt 0 ] || FLAGS=(--jobs 1 --time-limit 10s)
[ -n "$RESULTS" ] || RESULTS=$(mktemp -d /tmp/squall-soak-rss.XXXXXX)/soak
case "$RESULTS" in /*) ;; *) RESULTS="$PWD/$RESULTS" ;; esac
SQUALL=${CARGO_TARGET_DIR:-target}/release/squall
[ -x "$SQUALL" ] || { echo "soak-rss.sh: build first: cargo build --release" >&2; exit 254; }
# squall-node processes of this soak: their data dirs are under $RESULTS (other squall
# runs on the machine are not counted).
ours() {
    local n=0 pid
    for pid in $(pgrep -x squall-node || true); do
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q "^SQUALL_DATA_DIR=$RESULTS/"; then
            n=$((n + 1))
        fi
    done
    echo "$n"
}

mkdir -p "$(dirname "$RESULTS")"
"$SQUALL" soak --duration "$DURATION" --max-disk "$MAX_DISK" --results-dir "$RESULTS" "${FLAGS[@]}" \
    >"$RESULTS.stdout" 2>"$RESULTS.stderr" &
PID=$!
START=$(date +%s)
TSV="$RESULTS.rss.tsv"
printf 'elapsed_s\trss_kb\tthreads\truns_dir_bytes\n' >"$TSV"
while kill -0 "$PID" 2>/dev/null; do
    if [ -r "/proc/$PID/status" ]; then
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)
        threads=$(awk '/^Threads:/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)
        disk=$(du -sb "$RESULTS/runs" 2>/dev/null | cut -f1 || true)
        [ -n "$rss" ] && printf '%s\t%s\t%s\t%s\n' "$(( $(date +%s) - START ))" "$rss" "$threads" "${disk:-0}" >>"$TSV"
    fi
    # Sleep in short steps so the end of the soak is noticed at once.
    for _ in $(seq "$EVERY"); do kill -0 "$PID" 2>/dev/null || break; sleep 1; done
done
set +e
wait "$PID"
CODE=$?
set -e
if [ "$CODE" -ge 254 ]; then
    echo "soak-rss.sh: squall soak exited $CODE:" >&2
    tail -5 "$RESULTS.stderr" >&2
    exit "$CODE"
fi
sleep 1
LEFT=$(ours)

set +e
python3 - "$TSV" "$RESULTS" "$LEFT" "$CODE" <<'EOF'
import json, sys
tsv, results, left, code = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [l.split('\t') for l in open(tsv).read().split('\n')[1:] if l.strip()]
rows = [(int(a), int(b), int(c or 0), int(d or 0)) for a, b, c, d in rows]
s = json.load(open(f"{results}/summary.json"))
after_minute = [r for r in rows if r[0] >= 60]
first = after_minute[0] if after_minute else rows[0]
last = rows[-1]
ratio = last[1] / first[1]
disk_peak = max(r[3] for r in rows)
print(f"samples        {len(rows)} (every ~{rows[1][0]-rows[0][0] if len(rows) > 1 else 0} s), {tsv}")
print(f"rss            {first[1]/1024:.1f} MiB at {first[0]} s, {last[1]/1024:.1f} MiB at {last[0]} s: ratio {ratio:.3f}; peak {max(r[1] for r in rows)/1024:.1f} MiB")
print(f"threads        {first[2]} at {first[0]} s, {last[2]} at {last[0]} s")
print(f"disk           runs/ (in-flight runs included) peak {disk_peak/2**20:.1f} MiB, kept at end {s['disk']['kept_bytes']/2**20:.1f} MiB in {s['disk']['kept_runs']} dirs (limit {s['disk']['max_bytes']/2**30:.1f} GiB), pruned {s['pruned']['runs']}")
print(f"soak           {s['runs']} runs in {s['duration_s']:.0f} s ({s['runs_per_minute']:.2f} runs/min): {s['valid']} valid, {s['invalid']} invalid, {s['unknown']} unknown, {s['errors']} errors, {s['interrupted']} interrupted; exit {code}")
for g in s['failures'] + s['unknowns'] + s['error_groups']:
    print(f"  {g['verdict']:8} {g['signature']}: {g['count']} runs, smallest seed {g['smallest_seed']}: {g.get('replay')}")
print(f"leftover nodes {left}")
bad = []
if ratio > 1.10: bad.append("RSS grew more than 10%")
if disk_peak > s['disk']['max_bytes'] + 512 * 2**20: bad.append("disk use went past the bound")
if left: bad.append("squall-node processes outlived the soak")
print("verdict        " + ("; ".join(bad) if bad else "flat: RSS within 10%, disk under the bound, no process left"))
sys.exit(1 if bad else 0)
EOF
CHECK=$?
[ "$CHECK" -eq 0 ] || exit 1
exit "$CODE"
