#!/usr/bin/env bash
# Training memory and start-up against cache size (issue 39): the plain CNN and the small MGLN
# (manifests/experiments/fer2013-cnn.toml, fer2013-cpu.toml: 48×48, batch 64) trained for STEPS
# steps (`train run --max-steps`) on caches of 30,000, 100,000 and 290,000 records, made by
# `prep synth-scale` from two small caches of the synthetic data (`prep synth`):
#   fer  — the FER2013 layout (48×48 images, face crops 128×128: ~23 KB a record);
#   wild — the AffectNet layout at 224×224 face crops (manifests/prep/wild-224.toml: ~46 KB).
# Prints one Markdown table: time to the first step, samples/s after it, peak resident memory
# (VmHWM) and peak anonymous memory (RssAnon after any step). Release build; run on a quiet
# machine (a second libtorch process on the same cores changes every figure).
#   scripts/bench_loader_memory.sh [--steps N] [--sizes 30000,100000,290000] [--layouts fer,wild]
#                                  [--configs cnn,mgln] [--clean]
# The scaled caches (about 30 GB for both layouts at all sizes) stay in data/cache for a second
# run unless --clean is given.
set -euo pipefail
cd "$(dirname "$0")/.."
PREP=target/release/prep
TRAIN=target/release/train
STEPS=500 SIZES=30000,100000,290000 LAYOUTS=fer,wild CONFIGS=cnn,mgln CLEAN=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) STEPS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --layouts) LAYOUTS=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
RAW=data/raw/demo
CACHE=data/cache
$PREP synth --out $RAW >/dev/null
template() {
  case $1 in
    fer) $PREP build --dataset fer2013 --source $RAW/fer2013/fer2013.csv --name demo-fer2013 \
           --cache-dir $CACHE --qa-samples 0 >/dev/null ;;
    wild) $PREP build --dataset affectnet --source $RAW/affectnet --config manifests/prep/wild-224.toml \
           --name demo-affectnet224 --cache-dir $CACHE --qa-samples 0 >/dev/null ;;
  esac
  case $1 in fer) ls -d $CACHE/demo-fer2013-* ;; wild) ls -d $CACHE/demo-affectnet224-* ;; esac | head -n 1
}
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
echo "host: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), commit $(git rev-parse --short HEAD), $(date -u +%F)"
echo "command: scripts/bench_loader_memory.sh --steps $STEPS --sizes $SIZES --layouts $LAYOUTS --configs $CONFIGS"
echo
echo "| layout | records | shards GiB | config | first step s | samples/s | peak RSS MiB | peak anon MiB |"
echo "|---|---:|---:|---|---:|---:|---:|---:|"
made=()
for layout in ${LAYOUTS//,/ }; do
  t=$(template "$layout")
  for n in ${SIZES//,/ }; do
    line=$($PREP synth-scale --template "$t" --records "$n" --cache-dir $CACHE --name "bench-$layout-$n" | tail -n 1)
    dir=${line%%:*}
    made+=("$dir")
    gib=$(sed -E 's/.* records, ([0-9.]+) GiB.*/\1/' <<<"$line")
    for c in ${CONFIGS//,/ }; do
      case $c in cnn) cfg=manifests/experiments/fer2013-cnn.toml ;; mgln) cfg=manifests/experiments/fer2013-cpu.toml ;; esac
      json=$($TRAIN run --config $cfg --set "cache=$PWD/$dir" --set "runs_dir=$runs" \
               --run-name "$layout-$n-$c" --max-steps "$STEPS" 2>/dev/null | grep '^{')
      python3 - "$layout" "$n" "$gib" "$c" "$json" <<'PY'
import json, sys
layout, n, gib, c, j = sys.argv[1:]
d = json.loads(j)
print(f"| {layout} | {int(n):,} | {gib} | {c} | {d['first_step_s']:.2f} | {d['samples_per_s']:.0f} | {d['peak_rss_mib']:.0f} | {d['peak_anon_mib']:.0f} |")
PY
    done
  done
done
if [[ $CLEAN == 1 ]]; then rm -rf "${made[@]}"; fi
