#!/usr/bin/env bash
# Submits a sweep's (cell, fold) job array and the report job that waits for it:
#   scripts/slurm/submit-sweep.sh manifests/experiments/ckplus-ablation.toml
# (TRAIN, TRAIN_ARGS as for train-array.sbatch). Run from the repository root on a login node:
# it plans the sweep first (resolves and pins the cache in the sweep's sweep.json).
set -euo pipefail
CONFIG=${1:?usage: scripts/slurm/submit-sweep.sh EXPERIMENT_WITH_SWEEP.toml}
here=$(dirname "$0")
TRAIN=${TRAIN:-target/release/train}
N=$("$TRAIN" sweep --config "$CONFIG" --count)
mkdir -p logs
array=$(sbatch --parsable --array=0-$((N - 1)) --export=ALL,CONFIG="$CONFIG" \
  "$here/train-array.sbatch")
report=$(sbatch --parsable --dependency=afterok:"${array%%;*}" --gres=none \
  --export=ALL,CONFIG="$CONFIG",REPORT=1 "$here/train-array.sbatch")
echo "sweep array $array ($N tasks), report $report after it"
