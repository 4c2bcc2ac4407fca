#!/usr/bin/env bash
# `make demo`: the whole system on data made from the embedded public-domain face, CPU or GPU.
#   1. detection + 68 landmarks + MGLN crops on data/faces/astronaut.png (overlay in runs/demo/);
#   2. `prep synth`: synthetic CK+, Oulu-CASIA, FER2013 (and more, DFEW/AFEW clips) in their exact layouts, with
#      fold lists, and a landmark check against the true warped points;
#   3. `prep build` for the three (cache hits on a second run);
#   4. `train run` with manifests/experiments/demo.toml (k-fold on the CK+ demo cache);
#   5. `prep synth-video` and `train predict` with that run on the video: a row per frame, a plot
#      of the class probabilities over time, an annotated copy.
set -euo pipefail
cd "$(dirname "$0")/.."
PREP=target/release/prep
TRAIN=target/release/train
RAW=data/raw/demo
CACHE=data/cache   # demo.toml reads its cache from here
start=$(date +%s)
mkdir -p runs/demo
echo "== 1. face detection, 68 landmarks and crops (data/faces/astronaut.png)"
$PREP detect data/faces/astronaut.png --overlay runs/demo
echo
echo "== 2. synthetic datasets from the astronaut (prep synth)"
$PREP synth --out $RAW
echo
echo "== 3. caches (prep build)"
$PREP build --dataset ckplus --source $RAW/ckplus --folds $RAW/ckplus/folds.txt --name demo-ckplus --cache-dir "$CACHE"
$PREP build --dataset oulu --source $RAW/oulu --folds $RAW/oulu/folds.txt --name demo-oulu --cache-dir "$CACHE"
$PREP build --dataset fer2013 --source $RAW/fer2013/fer2013.csv --name demo-fer2013 --cache-dir "$CACHE"
echo
echo "== 4. MGLN, k-fold on the CK+ demo cache (train run, manifests/experiments/demo.toml)"
$TRAIN env | sed 's/^/   /'
mkdir -p runs
RUN=$(date -u +%Y%m%d-%H%M%S)
$TRAIN run --config manifests/experiments/demo.toml --run-name "$RUN"
$TRAIN report "runs/demo/$RUN" --html "runs/demo/$RUN/report.html" > /dev/null
echo
echo "== 5. the trained model over a video (prep synth-video, train predict)"
$PREP synth-video --out runs/demo/video/person.mp4 --frames 150
$TRAIN predict --run "runs/demo/$RUN" runs/demo/video/person.mp4 --out-dir runs/demo/video --annotate

echo
echo "demo finished in $(( $(date +%s) - start )) s. Pictures:"
echo "  runs/demo/astronaut.overlay.png, runs/demo/astronaut.crops.png   detection, landmarks, crops"
echo "  $CACHE/demo-ckplus-*/qa/sheet-01.png                           QA sheet of the synthetic CK+ cache"
echo "  runs/demo/$RUN/report.html                                     the run as one HTML page (any browser)"
echo "  runs/demo/$RUN/fold-fold0/confusion.png, curves.png (and .svg)   figures per fold"
echo "  runs/demo/video/person.csv, person_probabilities.png               predict on a video: a row per frame, probabilities over time"
echo "  runs/demo/video/person_annotated.mp4                             the video with box, landmarks and top class drawn"
echo "  tensorboard --logdir runs/demo                                   curves in TensorBoard (.venv/bin/tensorboard)"
