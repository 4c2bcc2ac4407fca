#!/usr/bin/env bash
# One MGLN training step on the CPU, side by side: `train bench` (tch) and the same step in PyTorch
# eager (the model of $FER_SHARED/bench/ref_mgln.py), paper network, batch 4, alternating runs.
# Usage: scripts/bench_train_cpu.sh [ROUNDS=2] [THREADS=2]   (after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
THREADS=${2:-2}
SHARED=${FER_SHARED:-../shared}
PY=.venv/bin/python
[ -f "$SHARED/bench/ref_mgln.py" ] || { echo "skipped: $SHARED/bench/ref_mgln.py not found"; exit 0; }
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
ref() {
  "$PY" -W ignore - "$SHARED/bench" "$THREADS" 2>/dev/null <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
import torch, torch.nn.functional as F
import ref_mgln
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
b = 4
m = ref_mgln.MGLN()
opt = torch.optim.Adam(m.parameters(), 1e-4)
face = torch.randn(b, 3, 128, 128)
eyes, noses, mouths = (torch.randn(b, 3, 3, *s) for s in ((48, 128), (64, 32), (32, 64)))
y = torch.randint(0, ref_mgln.C, (b,))
perm = torch.arange(b).flip(0)
def step():
    f = 0.7 * face + 0.3 * face[perm]          # mixup on the face, as the trainer
    g, p = m(f, eyes, noses, mouths)
    loss = 0.7 * F.cross_entropy(g, y) + 0.3 * F.cross_entropy(g, y[perm]) + F.cross_entropy(p, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
for _ in range(3):
    step()
times = []
for _ in range(5):
    t = time.perf_counter(); step(); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.1f}")
PY
}
ours() {
  target/release/train bench --device cpu --batch 4 --precision fp32 --steps 5 --json \
    | sed -n 's/.*"median_ms":\([0-9.]*\).*/\1/p' | head -1 | xargs printf "%.1f"
}
echo "| round | train bench (tch) ms/step | PyTorch eager ms/step | ratio (PyTorch / tch) |"
echo "|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
  a=$(ours); b=$(ref)
  echo "| $r | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b/a}') |"
done
