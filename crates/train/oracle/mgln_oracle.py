"""MGLN in plain PyTorch: the oracle the tch network and trainer are tested against.

The network is fer_shard.mgln (python/fer_shard/mgln.py), written from docs/specs/mgln.md and the
structure of the authors' code (yummy2108/FER-global-local-network), not from the Rust source: the
deformable sampling is done there with explicit gathers and bilinear weights (the Rust side uses
grid_sample), the LSTM is torch.nn.LSTM; the optimiser here is torch.optim.Adam. Parameter names
equal the tch VarStore's, so one safetensors file loads into both.

Usage: python mgln_oracle.py CASE_DIR [CASE_DIR ...]

A case with "kind": "adam" in case.json is the optimiser alone (see run_adam_case). Otherwise
each CASE_DIR holds (written by crates/train/tests/train/oracle.rs):
  case.json           {"model": ModelConfig, "fusion": "sum"|"softmax-average", "fusion_weight": w,
                       "lambda": λ, "perm": [..] | null, "lr": .., "weight_decay": ..,
                       "adam_steps": n, "plant": null | name}
  weights.safetensors the tch VarStore (parameters and batch-norm running statistics)
  inputs.safetensors  face [b,3,H,W], eyes/nose/mouth [b,T,3,h,w], labels [b] int64
and receives oracle.safetensors:
  eval.global, eval.local, eval.fused        scores in eval mode and the fused probabilities
  train.total, train.global, train.local     the training losses (mixup on the face)
  grad.<param>                               every gradient of train.total
  adam.<name>                                every parameter and buffer after `adam_steps` steps

`plant` switches on a deliberate defect, so the test can show that the comparison catches it:
  "frames-reversed"  the PBM's LSTM reads the frames last to first
  "adam-no-bias-correction"  Adam without the 1/(1-β^t) corrections
  "mixup-parts"      the part crops are mixed too (the authors mix the face only)
"""

import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# The network is the product's own PyTorch definition (python/fer_shard/mgln.py, installed into
# the .venv by `make setup`): one definition for the oracle and for exported models.
try:
    from fer_shard import mgln as net
except ImportError:  # run from a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "python"))
    from fer_shard import mgln as net

read_safetensors, write_safetensors, fuse = net.read_safetensors, net.write_safetensors, net.fuse


class Mgln(net.Mgln):
    """The network with a deliberate defect switched on by `plant` (see the module docstring)."""

    def __init__(self, cfg, plant=None):
        super().__init__(cfg)
        self.plant = plant

    def forward(self, face, parts):
        if self.plant == "frames-reversed":
            # The LSTMs read the frames last to first (per-frame SSM features do not depend on
            # the order).
            parts = [x.flip(1) for x in parts]
        return super().forward(face, parts)


# --- one case ------------------------------------------------------------------------------------

def losses(model, face, parts, labels, lam, perm, plant, amp=False):
    if perm is not None:
        face = lam * face + (1 - lam) * face[perm]
        if plant == "mixup-parts":
            parts = [lam * x + (1 - lam) * x[perm] for x in parts]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        g, p = model(face, parts)
    g = g.float() if g is not None else None
    p = p.float() if p is not None else None
    lg = lp = None
    if g is not None:
        lg = F.cross_entropy(g, labels)
        if perm is not None:
            lg = lam * lg + (1 - lam) * F.cross_entropy(g, labels[perm])
    if p is not None:
        lp = F.cross_entropy(p, labels)
    total = lg + lp if (lg is not None and lp is not None) else (lg if lg is not None else lp)
    return total, lg, lp


def run_adam_case(case_dir, case):
    """torch.optim.Adam on given gradients: adam.safetensors holds p<i> (start) and
    p<i>.step<k> (the gradient of step k); writes step<k>.p<i>, each parameter after step k."""
    named = read_safetensors(case_dir / "adam.safetensors")
    params = [nn.Parameter(named[f"p{i}"].clone()) for i in range(case["params"])]
    opt = torch.optim.Adam(params, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=case["weight_decay"])
    out = {}
    for k in range(case["adam_steps"]):
        for i, prm in enumerate(params):
            prm.grad = named[f"p{i}.step{k}"].clone()
        opt.step()
        for i, prm in enumerate(params):
            out[f"step{k}.p{i}"] = prm.detach().clone()
    write_safetensors(case_dir / "oracle.safetensors", out)


def run_case(case_dir):
    case_dir = Path(case_dir)
    case = json.loads((case_dir / "case.json").read_text())
    if case.get("kind") == "adam":
        return run_adam_case(case_dir, case)
    cfg, plant = case["model"], case.get("plant")
    model = Mgln(cfg, plant)
    weights = read_safetensors(case_dir / "weights.safetensors")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{case_dir}: names differ: missing {missing}, unexpected {unexpected}")
    inputs = read_safetensors(case_dir / "inputs.safetensors")
    face, labels = inputs["face"], inputs["labels"]
    parts = [inputs["eyes"], inputs["nose"], inputs["mouth"]]
    perm = torch.tensor(case["perm"], dtype=torch.int64) if case["perm"] is not None else None
    lam = case["lambda"]
    out = {}

    amp = bool(case.get("amp"))
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        g, p = model(face, parts)
    g = g.float() if g is not None else None
    p = p.float() if p is not None else None
    if g is not None:
        out["eval.global"] = g
    if p is not None:
        out["eval.local"] = p
    out["eval.fused"] = fuse(g, p, case["fusion"], case["fusion_weight"])

    model.train()
    if plant == "adam-no-bias-correction":
        opt = None
    else:
        opt = torch.optim.Adam(model.parameters(), lr=case["lr"], betas=(0.9, 0.999), eps=1e-8,
                               weight_decay=case["weight_decay"])
    state = {}
    for step in range(case["adam_steps"]):
        model.zero_grad(set_to_none=True)
        total, lg, lp = losses(model, face, parts, labels, lam, perm, plant, amp)
        total.backward()
        if step == 0:
            out["train.total"] = total.detach()
            if lg is not None:
                out["train.global"] = lg.detach()
            if lp is not None:
                out["train.local"] = lp.detach()
            for name, prm in model.named_parameters():
                if prm.grad is not None:
                    out[f"grad.{name}"] = prm.grad.clone()
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for name, prm in model.named_parameters():
                    gr = prm.grad + case["weight_decay"] * prm
                    m, v = state.get(name, (torch.zeros_like(prm), torch.zeros_like(prm)))
                    m = 0.9 * m + 0.1 * gr
                    v = 0.999 * v + 0.001 * gr * gr
                    state[name] = (m, v)
                    prm -= case["lr"] * m / (v.sqrt() + 1e-8)
    for name, t in model.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            out[f"adam.{name}"] = t
    write_safetensors(case_dir / "oracle.safetensors", out)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(False)
    for d in argv[1:]:
        run_case(d)
    print(f"oracle: {len(argv) - 1} case(s), torch {torch.__version__}")


if __name__ == "__main__":
    main(sys.argv)
