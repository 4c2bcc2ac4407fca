#!/usr/bin/env bash
# `make bench`: every prep and face speed figure in one table, each beside its goal, the previous
# version's binary and the dlib/OpenCV reference, measured in one sitting with old and new runs
# alternating (wall-clock figures on shared VMs move by ±20 % between runs of one binary, so each
# cell lists every round). A benchmark, not a test: no figure fails it.
#
#   previous version: BENCH_BASE (a git revision, default 0cab922, the version issue #31 measured),
#     built once into bench-out/ with its own target directory (~10 min the first time); "-" when
#     it cannot be built (no git history, offline crates).
#   reference: REF_PYTHON, default a venv made once in bench-out/ref-venv with dlib-bin and
#     opencv-python-headless 4.x (5.x has no CascadeClassifier) from pip; "-" when it cannot be made.
#   data (../shared, FER_SHARED): JAFFE, and the FER2013 sample grown to FER2013's 35,887 rows by
#     scripts/fer2013_fullsize.py (mirrors, shifts, brightness: distinct real faces), because the
#     full csv is not redistributable; 640x490 frames are JAFFE faces padded to CK+'s frame size.
#   BENCH_ROUNDS (default 2) rounds; one-core figures are pinned to core 0 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${FER_SHARED:-../shared}
OUT=${BENCH_OUT:-bench-out}
BASE=${BENCH_BASE:-0cab922}
ROUNDS=${BENCH_ROUNDS:-2}
SAMPLE=$SHARED/data/fer2013_sample/fer2013.csv
[[ -f $SAMPLE && -d $SHARED/data/jaffe ]] || { echo "skipped: bench: $SHARED (FER2013 sample, JAFFE) not found"; exit 0; }
NEW=target/release/prep
[[ -x $NEW ]] || { echo "bench: $NEW missing: run 'make build' first"; exit 1; }
MODEL=${FER_SHAPE_MODEL:-/usr/share/dlib/shape_predictor_68_face_landmarks.dat}
HAAR=/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml
mkdir -p "$OUT"
say() { echo "bench: $*" >&2; }

# --- the previous version ---------------------------------------------------------------------
OLD=""
if rev=$(git rev-parse --short "$BASE" 2>/dev/null); then
  OLD=$OUT/prep-$rev
  if [[ ! -x $OLD ]]; then
    say "building the previous version $rev into $OUT/base-src-$rev (once; log $OUT/base-build.log)"
    rm -rf "$OUT/base-src-$rev" && mkdir -p "$OUT/base-src-$rev"
    if git archive "$rev" | tar -x -C "$OUT/base-src-$rev" &&
       (cd "$OUT/base-src-$rev" && CARGO_TARGET_DIR="$PWD/../base-target" \
          cargo build --release -p prep) >"$OUT/base-build.log" 2>&1; then
      cp "$OUT/base-target/release/prep" "$OLD"
    else
      say "the previous version did not build (see $OUT/base-build.log); its column stays empty"
      OLD=""
    fi
  fi
else
  say "no git revision $BASE here; the previous version's column stays empty"
fi

# --- the reference ----------------------------------------------------------------------------
REF=${REF_PYTHON:-$OUT/ref-venv/bin/python}
if ! "$REF" -c 'import dlib, cv2, numpy, PIL; cv2.CascadeClassifier' 2>/dev/null && [[ -z ${REF_PYTHON:-} ]]; then
  say "making the reference venv $OUT/ref-venv (dlib-bin, opencv-python-headless; once)"
  rm -rf "$OUT/ref-venv"
  { python3 -m venv "$OUT/ref-venv" &&
    "$OUT/ref-venv/bin/pip" install -q dlib-bin 'opencv-python-headless<5' pillow numpy; } >&2 || true
fi
"$REF" -c 'import dlib, cv2, numpy, PIL; cv2.CascadeClassifier' 2>/dev/null || { say "no reference python (dlib, cv2)"; REF=""; }

# --- data -------------------------------------------------------------------------------------
CSV=$OUT/fer-full/fer2013.csv
if [[ ! -f $CSV.done ]]; then
  say "growing the FER2013 sample to 35,887 rows ($CSV)"
  mkdir -p "$OUT/fer-full" && python3 scripts/fer2013_fullsize.py "$SAMPLE" "$CSV" && touch "$CSV.done"
fi
JAFFE=("$SHARED"/data/jaffe/*.tiff)
if [[ ! -f $OUT/frames640/099.png ]]; then
  mkdir -p "$OUT/frames640"
  $NEW make-frames --out "$OUT/frames640" --size 448 --canvas 640x490 "${JAFFE[@]:0:100}" >/dev/null
fi
FRAMES=("$OUT"/frames640/*.png)

# --- measurements -----------------------------------------------------------------------------
declare -A CELL
add() { CELL[$1,$2]="${CELL[$1,$2]:+${CELL[$1,$2]} / }$3"; } # figure, column, value
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); printf '%.2f' "$(echo "$t1 - $t0" | bc -l)"; }
# The figure of one labelled line of `prep bench-face` (its last number).
face_figure() { grep -F "$2" <<<"$1" | head -1 | awk '{print $(NF - ($NF == "ms/face" ? 1 : 0))}'; }

prep_figures() { # binary, column
  local bin=$1 col=$2 cache=$OUT/cache-$2
  rm -rf "$cache"; sync; sleep 1
  /usr/bin/time -f '%e %M' -o "$OUT/time.txt" "$bin" build --dataset fer2013 --source "$CSV" \
    --cache-dir "$cache" --qa-samples 0 >/dev/null 2>&1
  read -r wall peak <"$OUT/time.txt"
  add fer "$col" "$(printf '%.2f s' "$wall")"
  add peak "$col" "$((peak / 1024)) MB"
  add hit "$col" "$(secs "$bin" build --dataset fer2013 --source "$CSV" --cache-dir "$cache" --qa-samples 0) s"
  add verify "$col" "$(secs "$bin" cache verify "$cache"/fer2013-*) s"
  local haar frames
  haar=$(taskset -c 0 "$bin" bench-face --cascade haarcascade_frontalface_default \
    --fallback-cascade none "${JAFFE[@]}")
  add haar "$col" "$(face_figure "$haar" "detect+landmarks+crops") img/s"
  add haaronly "$col" "$(face_figure "$haar" "cascade only") img/s"
  add lm1 "$col" "$(face_figure "$haar" "one face at a time") ms"
  add lmb "$col" "$(face_figure "$haar" "one batch") ms"
  frames=$(taskset -c 0 "$bin" bench-face "${FRAMES[@]}")
  add frames "$col" "$(face_figure "$frames" "detect+landmarks+crops") frames/s"
}

for round in $(seq "$ROUNDS"); do
  say "round $round of $ROUNDS"
  [[ -n $OLD ]] && prep_figures "$OLD" old
  prep_figures "$NEW" new
done
if [[ -n $OLD ]]; then
  same=0 total=0
  for f in "$OUT"/cache-old/fer2013-*/shard-*.fsh; do
    total=$((total + 1))
    cmp -s "$f" "$OUT/cache-new/$(basename "$(dirname "$f")")/$(basename "$f")" && same=$((same + 1))
  done
  add ident new "$same of $total shards byte-identical, same key"
fi

if [[ -n $REF ]]; then
  say "reference: dlib and OpenCV"
  r=$(taskset -c 0 "$REF" "$SHARED/bench/ref_prep.py" "$MODEL" "$OUT/ref_frames.json" "${FRAMES[@]}")
  add frames ref "$(sed 's/.*"images_per_s_one_core": \([0-9.]*\).*/\1/' <<<"$r") frames/s (dlib HOG + landmarks, ref_prep.py)"
  # OpenCV's Haar cascade (same cascade file, scale 1.1, 3 neighbours, the same smallest face as
  # bench-face: a quarter of the shorter side) and dlib's predictor in its first box, per image.
  r=$(taskset -c 0 "$REF" - "$MODEL" "$HAAR" "${JAFFE[@]}" <<'PY'
import sys, time
import cv2, dlib, numpy as np
from PIL import Image
cv2.setNumThreads(1)
sp, haar = dlib.shape_predictor(sys.argv[1]), cv2.CascadeClassifier(sys.argv[2])
imgs = [np.ascontiguousarray(np.asarray(Image.open(p).convert("L"))) for p in sys.argv[3:]]
def detect(g):
    m = min(g.shape) // 4
    return haar.detectMultiScale(g, scaleFactor=1.1, minNeighbors=3, minSize=(m, m))
best_det = best_chain = best_lm = float("inf")
boxes = [(g, detect(g)) for g in imgs]
faces = [(g, dlib.rectangle(int(x), int(y), int(x + w - 1), int(y + h - 1))) for g, b in boxes if len(b) for x, y, w, h in b[:1]]
for _ in range(3):
    t = time.perf_counter()
    for g in imgs:
        detect(g)
    best_det = min(best_det, time.perf_counter() - t)
    t = time.perf_counter()
    for g in imgs:
        b = detect(g)
        if len(b):
            x, y, w, h = b[0]
            sp(g, dlib.rectangle(int(x), int(y), int(x + w - 1), int(y + h - 1)))
    best_chain = min(best_chain, time.perf_counter() - t)
    t = time.perf_counter()
    for g, r in faces:
        sp(g, r)
    best_lm = min(best_lm, time.perf_counter() - t)
print(f"{len(imgs) / best_det:.1f} {len(imgs) / best_chain:.1f} {best_lm / max(len(faces), 1) * 1e3:.3f}")
PY
)
  read -r det chain lm <<<"$r"
  add haaronly ref "$det img/s (OpenCV detectMultiScale)"
  add haar ref "$chain img/s (OpenCV Haar + dlib landmarks, no crops)"
  add lm1 ref "$lm ms (dlib shape_predictor)"
fi

# --- the table --------------------------------------------------------------------------------
label_old="previous (${rev:-none})"
label_new="now ($(git rev-parse --short HEAD 2>/dev/null || echo this tree))"
echo
echo "| figure | goal | $label_old | $label_new | reference, same sitting |"
echo "|---|---|---|---|---|"
row() { echo "| $2 | $3 | ${CELL[$1,old]:--} | ${CELL[$1,new]:--} | ${CELL[$1,ref]:--} |"; }
row fer "FER2013, 35,887 rows (grown sample), \`prep build\`, all cores" "≤ 8 s"
row peak "… its peak memory (max RSS)" "no higher"
row ident "… its shards against the previous version's" "identical"
row hit "… a cache hit right after the build" "≤ 0.05 s"
row verify "… \`prep cache verify\`" "≤ 0.7 s"
row haar "Haar-only chain, JAFFE 256², detect + landmarks + crops, one core" "≥ 300 img/s"
row haaronly "Haar cascade alone, JAFFE 256², one core" "–"
row frames "default chain (LBP, Haar fallback), 640×490 frames, one core" "≥ 600 frames/s"
row lm1 "landmarks, one face at a time (JAFFE, Haar boxes)" "≤ 0.3 ms"
row lmb "landmarks, batched (\`predict_batch\`)" "–"
echo
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores;" \
  "$ROUNDS rounds, previous and current alternating"
