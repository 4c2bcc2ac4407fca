#!/usr/bin/env bash
# `make bench-video`: `train predict` on a 640x480 video in frames/s on one core and on two (each
# pinned with taskset), beside FFmpeg decoding the same video alone, for the small network of
# `make demo` and for the paper-size MGLN (about 15 minutes on 2 cores, most of it the paper-size
# network on the CPU). A benchmark, not a test: no figure fails it.
#   1. `prep synth --subjects 10` and `prep build --dataset dfew`: a synthetic DFEW cache;
#   2. one epoch of fold 0 for each network on it (the speed does not depend on the training);
#   3. `prep synth-video`: 300 frames 640x480 H.264 at 30 fps, a face in 270 of them;
#   4. `train bench-video` per network (BENCH_REPEATS repetitions, default 3, median reported).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_OUT:-bench-out}/video
PREP=target/release/prep
TRAIN=target/release/train
REPEATS=${BENCH_REPEATS:-3}
for b in $PREP $TRAIN; do [[ -x $b ]] || { echo "bench-video: $b missing: run 'make build' first"; exit 1; }; done
mkdir -p "$OUT"
$PREP synth --out "$OUT/raw" --subjects 10 > /dev/null
CACHE=$($PREP build --dataset dfew --source "$OUT/raw/dfew" --cache-dir "$OUT/cache" --name bench-dfew 2>&1 |
        sed -n 's/^\(built\|cache hit:\?\) \([^ ]*\).*/\2/p' | head -1)
[[ -n $CACHE && -d $CACHE ]] || CACHE=$(ls -d "$OUT"/cache/bench-dfew-* | head -1)
VIDEO=$OUT/video-640x480.mp4
[[ -f $VIDEO ]] || $PREP synth-video --out "$VIDEO" --frames 300 --fps 30
run_for() { # name, extra [model] lines
  local cfg=$OUT/$1.toml
  printf 'name = "%s"\ncache = "%s"\nruns_dir = "%s/runs"\nfolds = [0]\n[model]\n%b\n[train]\nepochs = 1\nbatch = 16\nmixup_alpha = 0.0\ndevice = "cpu"\n' \
    "$1" "$(realpath "$CACHE")" "$(realpath "$OUT")" "$2" > "$cfg"
  if [[ ! -f $OUT/runs/$1/bench/fold-fold0/result.json ]]; then
    rm -rf "$OUT/runs/$1/bench"
    $TRAIN run --config "$cfg" --run-name bench > /dev/null
  fi
  echo "$OUT/runs/$1/bench"
}
SMALL=$(run_for small 'width = 0.125\nssm_batchnorm = true\nface_size = [64, 64]\npart_scale = 0.5\nlstm_side = 8\nlstm_layers = 2\nhead_relu = false')
PAPER=$(run_for paper 'width = 1.0')
echo "host: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F); commit $(git rev-parse --short HEAD 2>/dev/null || echo -)"
for r in "$SMALL" "$PAPER"; do
  echo
  echo "== $(basename "$(dirname "$r")") network"
  $TRAIN bench-video --run "$r" --video "$VIDEO" --repeats "$REPEATS"
done
