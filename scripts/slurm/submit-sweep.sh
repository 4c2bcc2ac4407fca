#!/usr/bin/env bash
# Submits a sweep's (cell, fold) job array and the report job that waits for it:
#   scripts/slurm/submit-sweep.sh manifests/experiments/ckplus-ablation.toml
# Run from the repository root on a login node: it plans the sweep first (resolves and pins the
# cache in the sweep's sweep.json). Only the tasks whose fold has no result yet are submitted
# (`train sweep --missing`): after a cancelled or failed task the same command trains what is
# missing and then reports; when nothing is missing it submits the report job alone.
# Environment: TRAIN, TRAIN_ARGS as for train-array.sbatch; SBATCH_ARGS, more sbatch options for
# the training tasks, which override the script's #SBATCH lines (a CPU-only cluster:
# SBATCH_ARGS="--gres=none --cpus-per-task=2 --mem=4G").
set -euo pipefail
CONFIG=${1:?usage: scripts/slurm/submit-sweep.sh EXPERIMENT_WITH_SWEEP.toml}
here=$(dirname "$0")
TRAIN=${TRAIN:-target/release/train}
N=$("$TRAIN" sweep --config "$CONFIG" --count)
todo=$("$TRAIN" sweep --config "$CONFIG" --missing)
mkdir -p logs
# shellcheck disable=SC2086 # SBATCH_ARGS is a list of options
if [[ -n $todo ]]; then
  array=$(sbatch --parsable --array="$todo" ${SBATCH_ARGS:-} --export=ALL,CONFIG="$CONFIG" \
    "$here/train-array.sbatch")
  after=(--dependency=afterok:"${array%%;*}")
else
  array="" after=()
fi
# The report needs no GPU and one core; it waits for every submitted task to succeed.
# shellcheck disable=SC2086
report=$(sbatch --parsable "${after[@]}" ${SBATCH_ARGS:-} --gres=none --cpus-per-task=1 \
  --export=ALL,CONFIG="$CONFIG",REPORT=1 "$here/train-array.sbatch")
if [[ -n $array ]]; then
  echo "sweep array $array (tasks $todo of 0-$((N - 1))), report $report after it"
else
  echo "every one of the $N tasks is trained: report $report"
fi
