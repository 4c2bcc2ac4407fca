#!/usr/bin/env bash
# One-time, idempotent set-up of what the project needs beyond Rust:
#   1. the model files from Debian packages (dlib landmarks, OpenCV cascades);
#   2. libtorch 2.11.0 for tch 0.24, from PyTorch's wheel, in a project-local .venv;
#   3. the Python packages tests use as oracles (tensorboard, pyarrow, ...), in the same .venv;
#   4. a TrueType font for figure text, and Debian's chromium, headless, for the HTML report test;
#   5. Debian's slurm-wlm and munge, for `make test-slurm` (a one-node Slurm; nothing is started);
#   6. Debian's ffmpeg (ffmpeg, ffprobe): video clips in `prep`, `train predict` on a video.
# Safe to re-run: each step checks first and says what it skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
DLIB_MODEL=/usr/share/dlib/shape_predictor_68_face_landmarks.dat
HAAR=/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml

say() { printf 'setup: %s\n' "$*"; }

# 1. Models -------------------------------------------------------------------------------
if [[ -f $DLIB_MODEL && -f $HAAR ]]; then
  say "models present ($DLIB_MODEL, /usr/share/opencv4/) - skipped"
else
  say "installing Debian packages libdlib-data opencv-data (the landmark model and face cascades)"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
      say "ERROR: not root and no sudo: run 'apt-get install -y libdlib-data opencv-data' as root"; exit 1
    fi
  fi
  if ! { $SUDO apt-get install -y libdlib-data opencv-data >/dev/null 2>&1 ||
         { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y libdlib-data opencv-data >/dev/null; }; }; then
    say "ERROR: could not install libdlib-data opencv-data with apt-get."
    say "       Install them by hand (Debian/Ubuntu), or place the files at $DLIB_MODEL and /usr/share/opencv4/."
    exit 1
  fi
  [[ -f $DLIB_MODEL && -f $HAAR ]] || { say "ERROR: packages installed but model files are missing"; exit 1; }
  say "models installed"
fi

# 2. libtorch -----------------------------------------------------------------------------
STAMP=.venv/.torch-$TORCH_VERSION
if [[ -f $STAMP ]] && compgen -G '.venv/lib/python3*/site-packages/torch/lib/libtorch_cuda.so' >/dev/null; then
  say "libtorch $TORCH_VERSION present in .venv - skipped"
else
  PY=${PYTHON:-python3}
  command -v "$PY" >/dev/null || { say "ERROR: python3 is needed to fetch libtorch (PyTorch's wheel)"; exit 1; }
  if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv with $($PY --version 2>&1)"
    "$PY" -m venv .venv
  fi
  say "installing torch==$TORCH_VERSION into .venv (libtorch for tch; about 4.6 GB with its CUDA libraries)"
  .venv/bin/pip install --quiet "torch==$TORCH_VERSION"
  .venv/bin/python -c 'import torch; print("setup: torch", torch.__version__, "at", torch.__file__)'
  touch "$STAMP"
fi
# 3. Test oracles in .venv -------------------------------------------------------------------
# tensorboard: its event reader checks the event files `train run` writes; numpy, pyarrow,
# zstandard, xxhash, blake3: what python/fer_shard (the Python cache reader) needs; onnx,
# onnxruntime, onnxscript: `make export-onnx` and the ONNX Runtime parity test; wheel: so that
# `pip install ./python` builds without fetching anything; kubernetes-validate: the Kubernetes API
# schema check of scripts/k8s (offline, schemas of every version inside). Then python/fer_shard itself, editable
# (import fer_shard in the .venv follows the source tree).
PY_TEST_PKGS=(tensorboard numpy pyarrow zstandard xxhash blake3 wheel onnx onnxruntime onnxscript
             kubernetes-validate==1.37.0)
STAMP_PY=.venv/.test-packages-4
if [[ -f $STAMP_PY ]]; then
  say "test packages and fer_shard present in .venv (${PY_TEST_PKGS[*]}) - skipped"
else
  say "installing test packages into .venv: ${PY_TEST_PKGS[*]}, and python/fer_shard (editable)"
  .venv/bin/pip install --quiet "${PY_TEST_PKGS[@]}"
  .venv/bin/pip install --quiet --no-deps --no-build-isolation -e ./python
  touch "$STAMP_PY"
fi

# 4. A TrueType font for the figures' text, and headless Chromium for the HTML report test -------
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if command -v chromium >/dev/null && [[ -f $FONT ]]; then
  say "chromium and $FONT present - skipped"
else
  say "installing Debian packages fonts-dejavu-core chromium (figure text; the HTML report test)"
  SUDO=""
  if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  if ! { $SUDO apt-get install -y fonts-dejavu-core chromium >/dev/null 2>&1 ||
         { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y fonts-dejavu-core chromium >/dev/null 2>&1; }; }; then
    say "WARNING: could not install fonts-dejavu-core chromium: runs will warn 'figures not written'"
    say "         and the HTML report test will say skipped"
  fi
fi
# 5. Slurm and munge for `make test-slurm` ------------------------------------------------------
if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
   command -v munged >/dev/null; then
  say "slurm-wlm and munge present - skipped"
else
  say "installing Debian packages slurm-wlm munge (make test-slurm runs a one-node Slurm)"
  SUDO=""
  if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  if ! { $SUDO apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1 ||
         { $SUDO apt-get update >/dev/null 2>&1 &&
           $SUDO apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1; }; }; then
    say "WARNING: could not install slurm-wlm munge: make test-slurm will fail until they are installed"
  fi
fi
# 6. FFmpeg for video input ---------------------------------------------------------------------
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
  say "ffmpeg present ($(ffmpeg -hide_banner -version | head -1 | cut -d' ' -f3)) - skipped"
else
  say "installing Debian package ffmpeg (video clips in prep, train predict on a video)"
  SUDO=""
  if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  if ! { $SUDO apt-get install -y --no-install-recommends ffmpeg >/dev/null 2>&1 ||
         { $SUDO apt-get update >/dev/null 2>&1 &&
           $SUDO apt-get install -y --no-install-recommends ffmpeg >/dev/null 2>&1; }; }; then
    say "ERROR: could not install ffmpeg with apt-get; install FFmpeg (ffmpeg and ffprobe on PATH)"
    exit 1
  fi
fi
say "done"
