#!/usr/bin/env bash
# `make demo`: what the workspace can show on the embedded public-domain face today.
#   1. our pure-Rust detector + dlib-compatible landmarks + MGLN crops on data/faces/astronaut.png,
#      with an overlay and the crops written to runs/demo/;
#   2. a small shard cache built from those crops, verified and inspected;
#   3. what libtorch sees (CPU/GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/demo
mkdir -p "$OUT"
echo "== 1. face detection, 68 landmarks and crops (data/faces/astronaut.png)"
target/release/prep detect data/faces/astronaut.png --overlay "$OUT"
echo
echo "== 2. a demo shard cache of the astronaut's crops"
target/release/prep demo-cache --out data/cache
echo
echo "== 3. compute devices"
target/release/train env
echo
echo "pictures: $OUT/astronaut.overlay.png (box + landmarks), $OUT/astronaut.crops.png (face, eyes, nose, mouth)"
