#!/usr/bin/env bash
# Submits the N-part prep array and the merge that waits for it: scripts/slurm/submit.sh N
# (DATASET, SOURCE, NAME, CACHE_DIR, PREP_ARGS as for prep-array.sbatch; SBATCH_ARGS, more sbatch
# options for every job, which override the script's #SBATCH lines, e.g. on a small cluster
# SBATCH_ARGS="--cpus-per-task=2 --mem=4G").
set -euo pipefail
N=${1:?usage: scripts/slurm/submit.sh N}
here=$(dirname "$0")
mkdir -p logs
# shellcheck disable=SC2086 # SBATCH_ARGS is a list of options
array=$(sbatch --parsable --array=1-"$N" ${SBATCH_ARGS:-} "$here/prep-array.sbatch")
# shellcheck disable=SC2086
merge=$(sbatch --parsable --dependency=afterok:"${array%%;*}" ${SBATCH_ARGS:-} \
  --export=ALL,MERGE=1,PARTS="$N" "$here/prep-array.sbatch")
echo "prep array $array ($N parts), merge $merge after it"
