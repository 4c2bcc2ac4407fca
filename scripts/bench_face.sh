#!/usr/bin/env bash
# Face pipeline throughput, ours beside the MGLN authors' recipe (shared/bench/ref_prep.py: dlib HOG
# detector + dlib landmarks + OpenCV alignment and crops), one core each, in one run.
# Needs ../shared (FER_SHARED) for JAFFE; the reference needs a python with dlib-bin,
# opencv-python-headless, pillow and numpy (REF_PYTHON, default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${FER_SHARED:-../shared}
PY=${REF_PYTHON:-python3}
[[ -d $SHARED/data/jaffe ]] || { echo "skipped: bench_face: $SHARED/data/jaffe not found"; exit 0; }
OUT=${BENCH_OUT:-bench-out/face}
mkdir -p "$OUT/frames640"
JAFFE=("$SHARED"/data/jaffe/*.tiff)
# CK+-sized frames as in shared/reference/prep_reference.md: the first 100 JAFFE faces upscaled to
# 448x448 and padded into 640x490 grey.
if [[ ! -f $OUT/frames640/099.png ]]; then
  target/release/prep make-frames --out "$OUT/frames640" --size 448 --canvas 640x490 "${JAFFE[@]:0:100}"
fi
FRAMES=("$OUT"/frames640/*.png)
MODEL=${FER_SHAPE_MODEL:-/usr/share/dlib/shape_predictor_68_face_landmarks.dat}
# Default pipeline (LBP, Haar fallback), then Haar alone.
for cascade in lbpcascade_frontalface haarcascade_frontalface_default; do
  echo "== ours ($cascade), JAFFE 256x256"
  taskset -c 0 target/release/prep bench-face --cascade $cascade "${JAFFE[@]}"
  echo "== ours ($cascade), 640x490 frames"
  taskset -c 0 target/release/prep bench-face --cascade $cascade "${FRAMES[@]}"
done
if "$PY" -c 'import dlib, cv2, numpy' 2>/dev/null; then
  echo "== reference (dlib + OpenCV, ref_prep.py), JAFFE 256x256"
  taskset -c 0 "$PY" "$SHARED/bench/ref_prep.py" "$MODEL" "$OUT/ref_jaffe.json" "${JAFFE[@]}"
  echo "== reference, 640x490 frames"
  taskset -c 0 "$PY" "$SHARED/bench/ref_prep.py" "$MODEL" "$OUT/ref_frames.json" "${FRAMES[@]}"
  echo "== reference landmarks alone (dlib shape_predictor in the boxes of dlib's HOG detector), JAFFE"
  taskset -c 0 "$PY" - "$MODEL" "${JAFFE[@]}" <<'PY'
import sys, time
import dlib, numpy as np
from PIL import Image
sp, det = dlib.shape_predictor(sys.argv[1]), dlib.get_frontal_face_detector()
faces = []
for path in sys.argv[2:]:
    grey = np.array(Image.open(path).convert("L"))
    found = det(grey, 1)
    if len(found):
        faces.append((grey, found[0]))
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    for grey, box in faces:
        sp(grey, box)
    best = min(best, time.perf_counter() - t)
print(f'{{"faces": {len(faces)}, "ms_per_face_one_core": {best / max(len(faces), 1) * 1e3:.3f}}}')
PY
else
  echo "skipped: reference: $PY has no dlib/cv2 (pip install dlib-bin opencv-python-headless pillow numpy)"
fi
