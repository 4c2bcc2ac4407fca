"""MGLN in plain PyTorch: the oracle the tch network and trainer are tested against.

Written from docs/specs/mgln.md and the structure of the authors' code (yummy2108/
FER-global-local-network), not from the Rust source: the deformable sampling is done here with
explicit gathers and bilinear weights (the Rust side uses grid_sample), the LSTM is torch.nn.LSTM
and the optimiser is torch.optim.Adam. Parameter names equal the tch VarStore's, so one
safetensors file loads into both.

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

import ctypes
import json
import math
import struct
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# --- safetensors, by hand (the .venv has torch only) -------------------------------------------

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "BF16": torch.bfloat16,
          "F16": torch.float16, "I32": torch.int32, "U8": torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        if end > start:
            t = torch.frombuffer(bytearray(body[start:end]), dtype=dtype)
        else:
            t = torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        # No numpy in the .venv: copy the contiguous buffer's bytes directly.
        data = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(chunks))


# --- the network ---------------------------------------------------------------------------------

VGG_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256),
             (12, 256, 256), (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512)]
POOL_AFTER = {2, 7, 14}
STREAMS = ["face", "eyes", "nose", "mouth"]


def channels(cfg, c):
    """Channels of a paper layer with c channels at width w (at least 8, never above c)."""
    w = cfg["width"]
    if w == 1.0:
        return c
    return max(int(math.floor(c * w + 0.5)), min(8, c))


class Ssm(nn.Module):
    """VGG16 conv1_1 … conv4_3, shared by the face and every part crop."""

    def __init__(self, cfg):
        super().__init__()
        self.features = nn.ModuleDict()
        for i, cin, cout in VGG_CONVS:
            cin = 3 if i == 0 else channels(cfg, cin)
            self.features[str(i)] = nn.Conv2d(cin, channels(cfg, cout), 3, padding=1)
        self.use_bn = cfg["ssm_batchnorm"]
        if self.use_bn:
            self.bn = nn.ModuleDict({
                s: nn.ModuleDict({str(i): nn.BatchNorm2d(channels(cfg, cout))
                                  for i, _, cout in VGG_CONVS})
                for s in STREAMS})

    def forward(self, x, stream):
        for i, _, _ in VGG_CONVS:
            x = self.features[str(i)](x)
            if self.use_bn:
                x = self.bn[STREAMS[stream]][str(i)](x)
            x = F.relu(x)
            if i in POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return x


def bilinear(img, px, py, border):
    """Samples img [n, h, w] at real positions px, py [n, h', w'] (pixel units). border=True
    clamps positions into the map (oeway's ConvOffset2D); border=False reads 0 outside (a
    deformable conv's zero padding)."""
    n, h, w = img.shape
    if border:
        px = px.clamp(0, w - 1)
        py = py.clamp(0, h - 1)
    x0 = torch.floor(px)
    y0 = torch.floor(py)
    fx = px - x0
    fy = py - y0
    flat = img.reshape(n, h * w)
    out = 0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi = (x0 + dx).long()
            yi = (y0 + dy).long()
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).reshape(n, -1)
            v = flat.gather(1, idx).reshape(px.shape)
            out = out + torch.where(inside, v, torch.zeros_like(v)) * wx * wy
    return out


def on_grid_sampler_grid(p, n):
    """The fp32 value a position p (already in pixels) has after the round trip through
    grid_sample's normalised grid (align_corners: g = p/(n−1)·2−1, back = (g+1)·(n−1)/2), clamped
    into the map first as oeway's ConvOffset2D does. The round trip changes p by an ulp at most,
    but where p is an exact integer (an offset of exactly 0, wherever the features around a pixel
    are all 0) it decides which neighbour pair the bilinear weights, and so the one-sided
    derivative at that kink, come from. Both sides must take the same side to be comparable.
    Likewise at the edges (p exactly 0 or n−1, common where offsets are 0 in the first and last
    column or clamped)."""
    if n <= 1:
        return torch.zeros_like(p)
    g = p.clamp(0, n - 1) / (n - 1) * 2 - 1
    back = (g + 1) * ((n - 1) / 2)
    # grid_sample (border padding) takes the derivative as 0 at the edge itself, not only beyond
    # it; torch.clamp would pass it there.
    at_edge = (back <= 0) | (back >= n - 1)
    return torch.where(at_edge, back.detach(), back)


class ConvOffset2D(nn.Module):
    """oeway/pytorch-deform-conv: a 3×3 conv gives each channel an (x, y) offset per pixel."""

    def __init__(self, c):
        super().__init__()
        self.offsets = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)

    def forward(self, x):
        b, c, h, w = x.shape
        # autocast runs grid_sample in fp32; so does this sampling.
        o = self.offsets(x).float().reshape(b, c, 2, h, w)
        x = x.float()
        gy, gx = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype),
                                indexing="ij")
        px = on_grid_sampler_grid(o[:, :, 0] + gx, w).reshape(b * c, h, w)
        py = on_grid_sampler_grid(o[:, :, 1] + gy, h).reshape(b * c, h, w)
        return bilinear(x.reshape(b * c, h, w), px, py, border=True).reshape(b, c, h, w)


class DeformConv(nn.Module):
    """DCN v1, 3×3, stride 1, padding 1: tap k = (ky, kx) reads the input at
    (y + ky − 1 + Δy_k, x + kx − 1 + Δx_k); offsets channels are (Δx_k, Δy_k) per tap."""

    def __init__(self, cin, cout):
        super().__init__()
        self.offsets = nn.Conv2d(cin, 18, 3, padding=1)
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.empty(cout))

    def forward(self, x):
        b, c, h, w = x.shape
        off = self.offsets(x).float().reshape(b, 9, 2, h, w)
        x = x.float()
        gy, gx = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype),
                                indexing="ij")
        img = x.reshape(b * c, h, w)
        out = self.bias.reshape(1, -1, 1, 1)
        for k in range(9):
            ky, kx = divmod(k, 3)
            px = (off[:, k, 0:1] + gx + (kx - 1)).expand(b, c, h, w).reshape(b * c, h, w)
            py = (off[:, k, 1:2] + gy + (ky - 1)).expand(b, c, h, w).reshape(b * c, h, w)
            tap = bilinear(img, px, py, border=False).reshape(b, c, h, w)
            out = out + torch.einsum("oc,bchw->bohw", self.weight[:, :, ky, kx], tap)
        return out


class GfmBlock(nn.Module):
    def __init__(self, cfg, cin, cout):
        super().__init__()
        self.kind = cfg["deform"]
        if self.kind == "channel":
            self.deform = ConvOffset2D(cin)
            self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        elif self.kind == "dcn":
            self.dcn = DeformConv(cin, cout)
        else:
            self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        if self.kind == "channel":
            return F.relu(self.conv(self.deform(x)))
        if self.kind == "dcn":
            return F.relu(self.dcn(x))
        return F.relu(self.conv(x))


def head(convs, x, head_relu):
    for i, conv in enumerate(convs):
        x = conv(x)
        if i < len(convs) - 1 or head_relu:
            x = F.relu(x)
    return x.mean(dim=(2, 3))


class Gfm(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch = [channels(cfg, c) for c in (512, 256, 128, 64)]
        for i in range(3):
            setattr(self, f"block{i}", GfmBlock(cfg, ch[i], ch[i + 1]))
        hc = [ch[3], channels(cfg, 32), channels(cfg, 16), cfg["classes"]]
        for i in range(3):
            setattr(self, f"head{i}", nn.Conv2d(hc[i], hc[i + 1], 1))
        self.head_relu = cfg["head_relu"]

    def forward(self, x):
        for i in range(3):
            x = getattr(self, f"block{i}")(x)
        return head([getattr(self, f"head{i}") for i in range(3)], x, self.head_relu)


class LstBlock(nn.Module):
    def __init__(self, cfg, feat_len):
        super().__init__()
        ch = [channels(cfg, 512), channels(cfg, 256), channels(cfg, 128), 1]
        for i in range(3):
            setattr(self, f"conv{i}", nn.Conv2d(ch[i], ch[i + 1], 1))
        self.side = cfg["lstm_side"]
        self.lstm = nn.LSTM(feat_len, self.side ** 2, num_layers=cfg["lstm_layers"],
                            batch_first=True)

    def forward(self, feats, b, frames, reverse=False):
        x = feats
        for i in range(3):
            x = F.relu(getattr(self, f"conv{i}")(x))
        seq = x.reshape(b, frames, -1)
        if reverse:
            seq = seq.flip(1)
        out, _ = self.lstm(seq)
        return out[:, -1].reshape(b, 1, self.side, self.side)


class Pbm(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        for name, (h, w) in zip(("eyes", "nose", "mouth"), cfg["parts"]):
            setattr(self, name, LstBlock(cfg, (h // 8) * (w // 8)))
        ec = [3, channels(cfg, 32), channels(cfg, 16), cfg["classes"]]
        for i in range(3):
            setattr(self, f"end{i}", nn.Conv2d(ec[i], ec[i + 1], 1))
        self.head_relu = cfg["head_relu"]


class Mgln(nn.Module):
    def __init__(self, cfg, plant=None):
        super().__init__()
        self.cfg, self.plant = cfg, plant
        self.ssm = Ssm(cfg)
        if cfg["branches"] in ("both", "gfm"):
            self.gfm = Gfm(cfg)
        if cfg["branches"] in ("both", "pbm"):
            self.pbm = Pbm(cfg)

    def forward(self, face, parts):
        g = self.gfm(self.ssm(face, 0)) if hasattr(self, "gfm") else None
        p = None
        if hasattr(self, "pbm"):
            b, t = face.shape[0], self.cfg["frames"]
            maps = []
            for k, name in enumerate(("eyes", "nose", "mouth")):
                feats = self.ssm(parts[k].flatten(0, 1), k + 1)
                maps.append(getattr(self.pbm, name)(feats, b, t,
                                                    reverse=self.plant == "frames-reversed"))
            y = torch.cat(maps, 1)
            p = head([getattr(self.pbm, f"end{i}") for i in range(3)], y, self.pbm.head_relu)
        return g, p


# --- one case ------------------------------------------------------------------------------------

def fuse(g, p, rule, w):
    if g is None:
        return p.softmax(-1)
    if p is None:
        return g.softmax(-1)
    if rule == "sum":
        return (w * g + (1 - w) * p).softmax(-1)
    return w * g.softmax(-1) + (1 - w) * p.softmax(-1)


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
