#!/usr/bin/env bash
# Submits the N-part prep array and the merge that waits for it: scripts/slurm/submit.sh N
# (DATASET, SOURCE, NAME, CACHE_DIR, PREP_ARGS as for prep-array.sbatch).
set -euo pipefail
N=${1:?usage: scripts/slurm/submit.sh N}
here=$(dirname "$0")
mkdir -p logs
array=$(sbatch --parsable --array=1-"$N" "$here/prep-array.sbatch")
merge=$(sbatch --parsable --dependency=afterok:"${array%%;*}" --export=ALL,MERGE=1,PARTS="$N" \
  "$here/prep-array.sbatch")
echo "prep array $array ($N parts), merge $merge after it"
