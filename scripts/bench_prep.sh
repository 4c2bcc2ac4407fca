#!/usr/bin/env bash
# End-to-end `prep build` throughput on one core (parse/decode + detection or tracking + 68 landmarks
# + alignment + crops + zstd + shard write), beside the authors' recipe (shared/bench/ref_prep.py)
# on the same 640x490 frames, in one run. Release build; prints one table.
#   FER2013: the csv sample in ../shared (whole-frame boxes, as for the full 35,887-row csv).
#   CK+-sized: 100 JAFFE faces upscaled into 640x490 frames, laid out as a CK+ tree of sequences of
#   3 frames (first/middle/peak), so a sequence costs one detection and two tracked frames.
# Startup (model load, fingerprint) is timed on a 1-row input and subtracted for the per-item rates.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${FER_SHARED:-../shared}
PY=${REF_PYTHON:-python3}
[[ -f $SHARED/data/fer2013_sample/fer2013.csv ]] || { echo "skipped: bench_prep: $SHARED not found"; exit 0; }
OUT=${BENCH_OUT:-bench-out/prep}
rm -rf "$OUT/cache" && mkdir -p "$OUT/cache" "$OUT/one"
PREP="taskset -c 0 target/release/prep build -j 1 --qa-samples 0 --cache-dir $OUT/cache"
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }

CSV=$SHARED/data/fer2013_sample/fer2013.csv
ROWS=$(($(wc -l < "$CSV") - 1))
head -2 "$CSV" > "$OUT/one/fer2013.csv"
t_one=$(secs $PREP --dataset fer2013 --source "$OUT/one/fer2013.csv")
t_fer=$(secs $PREP --dataset fer2013 --source "$CSV")

# CK+ tree of 640x490 frames.
TREE=$OUT/ckplus
if [[ ! -f $TREE/.done ]]; then
  rm -rf "$TREE"; mkdir -p "$OUT/frames640"
  JAFFE=("$SHARED"/data/jaffe/*.tiff)
  target/release/prep make-frames --out "$OUT/frames640" --size 448 --canvas 640x490 "${JAFFE[@]:0:100}" >/dev/null
  i=0
  for f in "$OUT"/frames640/*.png; do
    s=$(printf 'S%03d' $((i / 10 + 1))); q=$(printf '%03d' $((i % 10 + 1)))
    mkdir -p "$TREE/cohn-kanade-images/$s/$q" "$TREE/Emotion/$s/$q"
    for n in 1 2 3; do cp "$f" "$TREE/cohn-kanade-images/$s/$q/${s}_${q}_0000000$n.png"; done
    echo "   5.0000000e+00" > "$TREE/Emotion/$s/$q/${s}_${q}_00000003_emotion.txt"
    i=$((i + 1))
  done
  mkdir -p "$OUT/ckone/cohn-kanade-images/S001/001" "$OUT/ckone/Emotion/S001/001"
  cp "$TREE"/cohn-kanade-images/S001/001/* "$OUT/ckone/cohn-kanade-images/S001/001/"
  cp "$TREE"/Emotion/S001/001/* "$OUT/ckone/Emotion/S001/001/"
  touch "$TREE/.done"
fi
SEQS=$(find "$TREE/cohn-kanade-images" -mindepth 2 -maxdepth 2 -type d | wc -l)
t_ckone=$(secs $PREP --dataset ckplus --folds none --source "$OUT/ckone")
t_ck=$(secs $PREP --dataset ckplus --folds none --source "$TREE")

# JAFFE: static 256x256 TIFFs, one detection each (landmarks batched 32 images at a time); the 213
# images 5 times under distinct numbers, so that the run is long beside the start-up.
JAFFE_DIR=$OUT/jaffe5
if [[ ! -f $JAFFE_DIR/.done ]]; then
  rm -rf "$JAFFE_DIR"; mkdir -p "$JAFFE_DIR"
  for f in "$SHARED"/data/jaffe/*.tiff; do
    b=$(basename "$f" .tiff); stem=${b%.*}; num=${b##*.}
    for k in 1 2 3 4 5; do cp "$f" "$JAFFE_DIR/$stem.$((k * 1000 + num)).tiff"; done
  done
  touch "$JAFFE_DIR/.done"
fi
mkdir -p "$OUT/jaffe-one"
cp "$(ls "$JAFFE_DIR"/*.tiff | head -1)" "$OUT/jaffe-one/"
NJ=$(ls "$JAFFE_DIR"/*.tiff | wc -l)
t_jone=$(secs $PREP --dataset jaffe --folds none --source "$OUT/jaffe-one")
t_jaffe=$(secs $PREP --dataset jaffe --folds none --source "$JAFFE_DIR")

ref="skipped (no dlib/cv2 in $PY)"
if "$PY" -c 'import dlib, cv2, numpy' 2>/dev/null; then
  MODEL=${FER_SHAPE_MODEL:-/usr/share/dlib/shape_predictor_68_face_landmarks.dat}
  FR=("$OUT"/frames640/*.png)
  t_ref=$(secs taskset -c 0 "$PY" "$SHARED/bench/ref_prep.py" "$MODEL" "$OUT/ref.json" "${FR[@]}")
  ref=$(echo "${#FR[@]} / $t_ref" | bc -l | xargs printf '%.1f frames/s (detect+landmarks+crops per frame, incl. startup)')
fi
printf '\n%-44s %10s %12s %14s\n' "prep build, one core" "items" "wall s" "per s (-startup)"
printf '%-44s %10d %12.2f %14.0f rows\n' "FER2013 sample csv (48x48, whole frame)" "$ROWS" "$t_fer" "$(echo "$ROWS / ($t_fer - $t_one)" | bc -l)"
printf '%-44s %10d %12.2f %14.0f frames\n' "CK+ tree, 640x490, 3 frames/sequence" "$((SEQS * 3))" "$t_ck" "$(echo "$SEQS * 3 / ($t_ck - $t_ckone)" | bc -l)"
printf '%-44s %10d %12.2f %14.0f images\n' "JAFFE, 256x256 TIFF, detection" "$NJ" "$t_jaffe" "$(echo "$NJ / ($t_jaffe - $t_jone)" | bc -l)"
printf '%-44s %10s %12.2f\n' "startup (1-row csv / 1-sequence tree)" "" "$t_one"
echo "reference ref_prep.py on the same 640x490 frames: $ref"
