#!/usr/bin/env bash
# An overnight squall soak as a Slurm job array: task i runs
# `squall soak --shard i/SHARDS` into RESULTS/shard-i, and once every task has ended a
# dependent job merges them with `squall summary RESULTS/shard-* --out RESULTS/all`.
#
#   bash docs/soak-slurm.sh            # submits the array and the summary job
#   RESULTS=/scratch/me/soak bash docs/soak-slurm.sh
#
# Run by hand, the script submits itself as the array (the #SBATCH lines below) and then
# the summary job with --dependency=afterany on it; inside the array it is one shard.
# `squall` and `squall-node` must be on PATH on the compute nodes (or set SQUALL to the
# binary). SHARDS must match --array=0-(SHARDS-1).
#
# Exit codes: a soak exits 1 when a run was invalid and 2 when runs were unknown; those
# are findings, so the task records the code in its directory and exits 0. Only 254 (bad
# flags) and 255 (squall's own failure) fail the task. Slurm sends SIGTERM at the time
# limit (and scancel does): the soak stops launching, lets the runs in flight end and
# writes summary.md; --signal gives it two minutes before the limit.
#
#SBATCH --job-name=squall-soak
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --time=08:40:00
#SBATCH --signal=TERM@120
#SBATCH --output=squall-soak-%A_%a.log
set -uo pipefail

SHARDS=8
SQUALL=${SQUALL:-squall}

if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
    export RESULTS=${RESULTS:-$PWD/squall-soak-$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$RESULTS"
    array=$(sbatch --parsable --export=ALL "$0") || exit 1
    sbatch --parsable --export=ALL --job-name=squall-summary \
        --dependency="afterany:${array%%;*}" \
        --output="$RESULTS/summary-%j.log" \
        --wrap "$SQUALL summary $RESULTS/shard-* --out $RESULTS/all; code=\$?; echo \$code > $RESULTS/all/exit-code; [ \$code -le 2 ]"
    echo "submitted array $array and its summary; results in $RESULTS"
    exit 0
fi

: "${RESULTS:?submit with bash docs/soak-slurm.sh, which sets RESULTS}"
dir=$RESULTS/shard-$SLURM_ARRAY_TASK_ID
# srun makes the soak a job step, so it (not only this shell) gets --signal's SIGTERM.
srun "$SQUALL" soak --duration 8h --jobs 2 \
    --shard "$SLURM_ARRAY_TASK_ID/$SHARDS" \
    --nemesis all --time-limit 20s \
    --max-disk 2GiB --results-dir "$dir"
code=$?
echo "$code" >"$dir/exit-code"
[ "$code" -le 2 ]
