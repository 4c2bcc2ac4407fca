#!/usr/bin/env bash
# One-command GPU check of the trainer (issue 17): what libtorch sees, training-step throughput of
# the paper's network (synthetic device-resident inputs and streamed from a cache) at batch 64 and
# 256 in fp32 / tf32 / bf16, the PyTorch reference (../shared/bench/ref_mgln.py, eager and
# torch.compile) in the same run for the ratio, 3-epoch FER2013 runs under the paper preset and
# the tuned preset (preset = "tuned") with accuracy and samples/s, and peak GPU memory. Writes OUT/gpu_check.json and OUT/gpu_check.md and prints the
# table. Budget: about 8 minutes on one CUDA GPU.
#
# Runs from a copy of the work tree with release binaries built beforehand on a CPU machine:
#   scripts/gpu_check.sh --pack            # here: stripped, gzipped binaries, ref_mgln.py and the
#                                          # gzipped FER2013 sample csv into .gl/ (about 30 MB,
#                                          # under the device tool's 64 MiB carry limit)
#   scripts/gpu_check.sh                   # there (device tool, carry [".gl"]): the check
#   scripts/gpu_check.sh --device cpu --small   # CPU dry run (tiny sizes); `make test` runs it
# On the GPU machine libtorch is the one of its python3 (PyTorch 2.11.0 with CUDA): its torch/lib
# goes first on LD_LIBRARY_PATH, ahead of the binaries' RUNPATH to this machine's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
SMALL=0
OUT=${GPU_CHECK_OUT:-bench-out/gpu-check}
PACK=0
BIN=""
FER_CSV=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --device) DEVICE=$2; shift 2 ;;
    --small) SMALL=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --pack) PACK=1; shift ;;
    --bin) BIN=$2; shift 2 ;;
    --fer-csv) FER_CSV=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { printf 'gpu_check: %s\n' "$*" >&2; }

if [[ $PACK == 1 ]]; then
  rm -rf .gl; mkdir -p .gl
  for b in train prep; do
    [[ -x target/release/$b ]] || { say "target/release/$b missing: run make build first"; exit 1; }
    strip -o ".gl/$b" "target/release/$b"
    gzip -9 ".gl/$b"
  done
  [[ -f ../shared/bench/ref_mgln.py ]] && cp ../shared/bench/ref_mgln.py .gl/
  csv=${FER_CSV:-../shared/data/fer2013_sample/fer2013.csv}
  [[ -f $csv ]] && gzip -9 -c "$csv" > .gl/fer2013.csv.gz
  du -sh .gl
  size=$(du -sm .gl | cut -f1)
  (( size < 62 )) || { say ".gl is $size MiB: over the 64 MiB carry limit"; exit 1; }
  say "packed into .gl/ (carry [\".gl\"] with the device tool, then run scripts/gpu_check.sh there)"
  exit 0
fi

mkdir -p "$OUT"
# Binaries: --bin DIR, else .gl/ (packed: unzipped into OUT/bin), else target/release.
if [[ -z $BIN ]]; then
  if [[ -f .gl/train.gz && -f .gl/prep.gz ]]; then
    BIN="$OUT/bin"; mkdir -p "$BIN"
    for b in train prep; do gzip -dc ".gl/$b.gz" > "$BIN/$b"; chmod +x "$BIN/$b"; done
  else
    BIN=target/release
  fi
fi
TRAIN=$BIN/train
PREP=$BIN/prep
[[ -x $TRAIN && -x $PREP ]] || { say "no train/prep binaries in $BIN (make build, or --pack)"; exit 1; }

# libtorch of the python3 that has torch (the GPU machine's), else the .venv's.
PY=python3
if ! $PY -c 'import torch' 2>/dev/null; then PY=.venv/bin/python; fi
TL=$($PY -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
export LD_LIBRARY_PATH="$TL${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

mkdir -p "$OUT"
WORK="$OUT/work"
rm -rf "$WORK"; mkdir -p "$WORK"
start=$(date +%s)

if [[ $SMALL == 1 ]]; then
  BATCHES=2; STEPS=2; WIDTH=0.0625; PRECISIONS=fp32; EPOCHS=1
else
  BATCHES=64,256; STEPS=20; WIDTH=1; PRECISIONS=fp32,tf32,bf16; EPOCHS=3
fi

# Peak GPU memory, sampled while the checks run (nvidia-smi; absent on CPU machines).
PEAK_FILE="$WORK/peak_mib"
echo 0 > "$PEAK_FILE"
SAMPLER=""
if [[ $DEVICE == cuda* ]] && command -v nvidia-smi >/dev/null; then
  ( peak=0; while true; do
      m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | sort -n | tail -1)
      [[ -n $m && $m -gt $peak ]] && { peak=$m; echo "$peak" > "$PEAK_FILE"; }
      sleep 0.5
    done ) &
  SAMPLER=$!
fi
cleanup() { [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null || true; }
trap cleanup EXIT

say "1/5 train env"
$TRAIN env --json > "$WORK/env.json"
cat "$WORK/env.json" >&2

say "2/5 a FER2013 cache"
csv=$FER_CSV
if [[ -z $csv && -f .gl/fer2013.csv.gz ]]; then
  gzip -dc .gl/fer2013.csv.gz > "$WORK/fer2013.csv"; csv="$WORK/fer2013.csv"
fi
[[ -z $csv && -f ../shared/data/fer2013_sample/fer2013.csv ]] && csv=../shared/data/fer2013_sample/fer2013.csv
if [[ -z $csv || $SMALL == 1 ]]; then
  # Self-contained: the synthetic FER2013 layout made from the embedded face.
  # (10 subjects: 140 rows, 98 / 14 / 28 Training / PublicTest / PrivateTest.)
  $PREP synth --out "$WORK/raw" --subjects 10 --frames 3 > "$WORK/synth.log"
  csv="$WORK/raw/fer2013/fer2013.csv"
fi
$PREP build --dataset fer2013 --source "$csv" --cache-dir "$WORK/cache" --name gpu-check \
  --qa-samples 0 > "$WORK/prep.log"
CACHE=$(ls -d "$WORK"/cache/gpu-check-* | head -1)

say "3/5 train bench (paper network at width $WIDTH; synthetic and from the cache)"
$TRAIN bench --device "$DEVICE" --batch "$BATCHES" --precision "$PRECISIONS" --steps "$STEPS" \
  --width "$WIDTH" --cache "$CACHE" --json > "$WORK/bench.jsonl"

say "4/5 PyTorch reference (ref_mgln.py, eager and torch.compile)"
REF=""
for r in .gl/ref_mgln.py ../shared/bench/ref_mgln.py; do [[ -f $r ]] && { REF=$r; break; }; done
if [[ $DEVICE == cuda* && -n $REF ]]; then
  $PY "$REF" "$WORK/ref_eager.json" fp32,tf32,bf16,bf16-cl > "$WORK/ref_eager.log" 2>&1 || say "ref_mgln.py eager failed (see $WORK/ref_eager.log)"
  $PY "$REF" "$WORK/ref_compile.json" tf32-compile,bf16-cl-compile > "$WORK/ref_compile.log" 2>&1 || say "ref_mgln.py compile failed (see $WORK/ref_compile.log)"
elif [[ -z $REF ]]; then
  say "  skipped: ref_mgln.py not found (scripts/gpu_check.sh --pack copies it into .gl/)"
else
  say "  skipped: the reference needs CUDA"
fi

say "4/5 $EPOCHS-epoch FER2013 runs: the paper preset and the tuned preset"
for preset in paper tuned; do
cat > "$WORK/fer2013-$preset.toml" <<EOF
name = "gpu-check"
preset = "$preset"
cache = "$CACHE"
runs_dir = "$WORK/runs"
protocol = "split"
[model]
width = $WIDTH
$( [[ $SMALL == 1 ]] && printf 'ssm_batchnorm = true\nface_size = [64, 64]\npart_scale = 0.5\nlstm_side = 4\nlstm_layers = 1\nhead_relu = false\n' )
[train]
epochs = $EPOCHS
batch = $( [[ $SMALL == 1 ]] && echo 8 || echo 64 )
$( [[ $preset == paper ]] && { [[ $SMALL == 1 ]] && echo "lr = 1e-3" || echo "lr = 1e-4"; } )
selection = "validation"
device = "$DEVICE"
precision = "$( [[ $SMALL == 1 ]] && echo fp32 || echo bf16 )"
EOF
name=check; [[ $preset == tuned ]] && name=check-tuned
$TRAIN run --config "$WORK/fer2013-$preset.toml" --run-name $name > "$WORK/run-$preset.log" 2>&1 || {
  tail -20 "$WORK/run-$preset.log" >&2; say "the $preset training run failed"; exit 1; }
done

say "5/5 tables"
elapsed=$(( $(date +%s) - start ))
$PY - "$WORK" "$OUT" "$DEVICE" "$elapsed" "$(cat "$PEAK_FILE")" <<'PYEOF'
import json, sys, os, glob
work, out, device, elapsed, peak = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
env = json.load(open(f"{work}/env.json"))
bench = [json.loads(l) for l in open(f"{work}/bench.jsonl") if l.strip()]
ref = []
for name in ("ref_eager.json", "ref_compile.json"):
    p = f"{work}/{name}"
    if os.path.exists(p):
        ref += json.load(open(p))
def run_of(name):
    d = f"{work}/runs/gpu-check/{name}"
    if not os.path.isdir(d):
        return {}, []
    return (json.load(open(f"{d}/summary.json")),
            [json.loads(l) for l in open(f"{d}/metrics.jsonl")])
summary, metrics = run_of("check")
tuned_summary, tuned_metrics = run_of("check-tuned")
def run_row(s, m):
    return {"accuracy": s.get("mean"), "epochs": len(m),
            "train_accuracy": m[-1].get("train_accuracy") if m else None,
            "samples_per_s": [x.get("samples_per_s") for x in m]}
result = {"device": device, "env": env, "bench": bench, "reference": ref,
          "run": run_row(summary, metrics), "run_tuned": run_row(tuned_summary, tuned_metrics),
          "peak_gpu_mib": peak or None, "seconds": elapsed}
json.dump(result, open(f"{out}/gpu_check.json", "w"), indent=1)
best_ref = {}
for r in ref:
    best_ref[r["batch"]] = max(best_ref.get(r["batch"], 0), r["samples_per_s"])
lines = [f"# GPU check ({device}, {elapsed} s)", "",
         f"libtorch: cuda {env.get('cuda')} ({env.get('cuda_devices')} devices), cudnn {env.get('cudnn')}", "",
         "| input | precision | batch | ms/step | samples/s | best PyTorch samples/s | ratio |",
         "|---|---|---|---|---|---|---|"]
for b in bench:
    r = best_ref.get(b["batch"])
    ratio = f"{b['samples_per_s'] / r:.2f}" if r else "-"
    lines.append(f"| {b['input']} | {b['precision']} | {b['batch']} | {b['median_ms']:.1f} | "
                 f"{b['samples_per_s']:.1f} | {r if r else '-'} | {ratio} |")
lines += ["", "| PyTorch reference mode | batch | samples/s | peak GiB |", "|---|---|---|---|"]
for r in ref:
    lines.append(f"| {r['mode']} | {r['batch']} | {r['samples_per_s']} | {r.get('peak_mem_gib')} |")
acc = summary.get("mean")
sps = [m.get("samples_per_s") for m in metrics]
tacc = tuned_summary.get("mean")
lines += ["", f"{len(metrics)}-epoch FER2013 run: accuracy {acc * 100:.1f} %" if acc is not None else "run: no summary",
          f"{len(tuned_metrics)}-epoch FER2013 run, tuned preset: accuracy {tacc * 100:.1f} %" if tacc is not None else "tuned run: no summary",
          f"training samples/s per epoch: {', '.join(f'{s:.0f}' for s in sps)}",
          f"peak GPU memory: {peak} MiB" if peak else "peak GPU memory: n/a (no nvidia-smi)"]
open(f"{out}/gpu_check.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
say "wrote $OUT/gpu_check.json and $OUT/gpu_check.md"
