"""MGLN and the plain CNN baseline in PyTorch: the networks `train` trains, for use outside Rust.

One definition serves two purposes:

* a model exported by ``train export RUN --out DIR`` loads into it (:func:`load`), and gives the
  scores ``train predict`` gives on the same inputs;
* it is the oracle the tch network is tested against (``crates/train/oracle/mgln_oracle.py``
  imports it): written from ``docs/specs/mgln.md``, not from the Rust source. The deformable
  sampling is explicit gathers with bilinear weights (the Rust side uses ``grid_sample``) and the
  LSTM is ``torch.nn.LSTM``.

Parameter names equal the tch VarStore's, so one safetensors file loads into both::

    >>> from fer_shard import mgln
    >>> model, meta = mgln.load("exported/")          # model.json + weights.safetensors
    >>> inputs = mgln.read_safetensors("crops/0/inputs.safetensors")   # train predict --dump-crops
    >>> probabilities, scores = model.predict(inputs["face"], inputs["eyes"], inputs["nose"], inputs["mouth"])

Inputs are what ``train predict`` feeds the network: ``face`` [b, 3, H, W] and per part
[b, T, 3, h, w], grey crops scaled to [0, 1], resized to the model's sizes, repeated to three
channels and normalised with ImageNet's mean and std (``model.json``'s ``input``).
"""

import ctypes
import json
import math
import struct
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Mgln", "PlainCnn", "Network", "build", "load", "fuse", "mirror", "read_safetensors",
           "write_safetensors", "channels"]

# --- safetensors, by hand (torch is the only dependency) ----------------------------------------

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "BF16": torch.bfloat16,
          "F16": torch.float16, "I32": torch.int32, "U8": torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    """Every tensor of a safetensors file, by name."""
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
    """Writes tensors (by name) as a safetensors file."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(chunks))


# --- MGLN ----------------------------------------------------------------------------------------

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


def head_channels(cfg):
    """The two hidden widths of the GFM head and the part end: `head_channels`, or the paper's
    32 and 16 scaled by the width."""
    hc = cfg.get("head_channels")
    if hc:
        return int(hc[0]), int(hc[1])
    return channels(cfg, 32), channels(cfg, 16)


class Ssm(nn.Module):
    """VGG16 conv1_1 … conv4_3, shared by the face and every part crop; with `ssm_batchnorm`,
    each stream (face, eyes, nose, mouth) has batch norms of its own after every conv."""

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

    def forward(self, x, stream: int):
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
    out = torch.zeros_like(px)
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
    but where p is an exact integer (an offset of exactly 0) it decides which neighbour pair the
    bilinear weights, and so the one-sided derivative at that kink, come from: both sides must
    take the same side to be comparable. Likewise at the edges."""
    if n <= 1:
        return torch.zeros_like(p)
    g = p.clamp(0, n - 1) / (n - 1) * 2 - 1
    back = (g + 1) * ((n - 1) / 2)
    # grid_sample (border padding) takes the derivative as 0 at the edge itself.
    at_edge = (back <= 0) | (back >= n - 1)
    return torch.where(at_edge, back.detach(), back)


class ConvOffset2D(nn.Module):
    """oeway/pytorch-deform-conv: a 3×3 conv gives each channel an (x, y) offset per pixel."""

    def __init__(self, c):
        super().__init__()
        self.offsets = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)

    def forward(self, x):
        b, c, h, w = x.shape
        o = self.offsets(x).float().reshape(b, c, 2, h, w)
        x = x.float()
        gy = torch.arange(h, dtype=x.dtype).reshape(h, 1).expand(h, w)
        gx = torch.arange(w, dtype=x.dtype).reshape(1, w).expand(h, w)
        px = on_grid_sampler_grid(o[:, :, 0] + gx, w).reshape(b * c, h, w)
        py = on_grid_sampler_grid(o[:, :, 1] + gy, h).reshape(b * c, h, w)
        return bilinear(x.reshape(b * c, h, w), px, py, border=True).reshape(b, c, h, w)


class DeformConv(nn.Module):
    """DCN v1, 3×3, stride 1, padding 1: tap k = (ky, kx) reads the input at
    (y + ky − 1 + Δy_k, x + kx − 1 + Δx_k); offset channels are (Δx_k, Δy_k) per tap."""

    def __init__(self, cin, cout):
        super().__init__()
        self.offsets = nn.Conv2d(cin, 18, 3, padding=1)
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.empty(cout))

    def forward(self, x):
        b, c, h, w = x.shape
        off = self.offsets(x).float().reshape(b, 9, 2, h, w)
        x = x.float()
        gy = torch.arange(h, dtype=x.dtype).reshape(h, 1).expand(h, w)
        gx = torch.arange(w, dtype=x.dtype).reshape(1, w).expand(h, w)
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
            return self.conv(self.deform(x))
        if self.kind == "dcn":
            return self.dcn(x)
        return self.conv(x)


def norm_list(module, name, chans, on):
    """Batch norms `<name><i>_bn` (when `on`), as the tch network names them."""
    out = []
    for i, c in enumerate(chans):
        if on:
            setattr(module, f"{name}{i}_bn", nn.BatchNorm2d(c))
            out.append(f"{name}{i}_bn")
        else:
            out.append(None)
    return out


def head(module, convs, norms, x, head_relu):
    """1×1 convs, batch norm (when configured) and ReLU between them, ReLU after the last with
    `head_relu`; global average pooling."""
    last = len(convs) - 1
    for i, conv in enumerate(convs):
        x = getattr(module, conv)(x)
        if i < last and norms[i] is not None:
            x = getattr(module, norms[i])(x)
        if i < last or head_relu:
            x = F.relu(x)
    return x.mean(dim=(2, 3))


class Gfm(nn.Module):
    """Three [deformable sampling → conv3×3 (→ batch norm) + ReLU] blocks, a 1×1 head, global
    average pooling."""

    def __init__(self, cfg):
        super().__init__()
        ch = [channels(cfg, c) for c in (512, 256, 128, 64)]
        for i in range(3):
            setattr(self, f"block{i}", GfmBlock(cfg, ch[i], ch[i + 1]))
        self.block_norms = norm_list(self, "block", ch[1:], cfg.get("head_batchnorm", False))
        h0, h1 = head_channels(cfg)
        hc = [ch[3], h0, h1, cfg["classes"]]
        for i in range(3):
            setattr(self, f"head{i}", nn.Conv2d(hc[i], hc[i + 1], 1))
        self.head_norms = norm_list(self, "head", hc[1:3], cfg.get("head_batchnorm", False))
        self.head_relu = cfg["head_relu"]

    def forward(self, x):
        for i in range(3):
            x = getattr(self, f"block{i}")(x)
            if self.block_norms[i] is not None:
                x = getattr(self, self.block_norms[i])(x)
            x = F.relu(x)
        return head(self, [f"head{i}" for i in range(3)], self.head_norms, x, self.head_relu)


class LstBlock(nn.Module):
    """1×1 convs 512→256→128→1 (→ batch norm) + ReLU per frame, flattened, a multi-layer LSTM
    over the frames, the last step reshaped to 1×side×side."""

    def __init__(self, cfg, feat_len):
        super().__init__()
        ch = [channels(cfg, 512), channels(cfg, 256), channels(cfg, 128), 1]
        for i in range(3):
            setattr(self, f"conv{i}", nn.Conv2d(ch[i], ch[i + 1], 1))
        self.conv_norms = norm_list(self, "conv", ch[1:], cfg.get("head_batchnorm", False))
        self.side = cfg["lstm_side"]
        self.lstm = nn.LSTM(feat_len, self.side ** 2, num_layers=cfg["lstm_layers"],
                            batch_first=True)

    def forward(self, feats, b: int, frames: int):
        x = feats
        for i in range(3):
            x = getattr(self, f"conv{i}")(x)
            if self.conv_norms[i] is not None:
                x = getattr(self, self.conv_norms[i])(x)
            x = F.relu(x)
        seq = x.reshape(b, frames, -1)
        out, _ = self.lstm(seq)
        return out[:, -1].reshape(b, 1, self.side, self.side)


class Pbm(nn.Module):
    """An LST block per part (eyes, nose, mouth) and the part end (1×1 convs 3→…→C, global
    average pooling)."""

    def __init__(self, cfg):
        super().__init__()
        for name, (h, w) in zip(("eyes", "nose", "mouth"), cfg["parts"]):
            setattr(self, name, LstBlock(cfg, (h // 8) * (w // 8)))
        h0, h1 = head_channels(cfg)
        ec = [3, h0, h1, cfg["classes"]]
        for i in range(3):
            setattr(self, f"end{i}", nn.Conv2d(ec[i], ec[i + 1], 1))
        self.end_norms = norm_list(self, "end", ec[1:3], cfg.get("head_batchnorm", False))
        self.head_relu = cfg["head_relu"]

    def end(self, y):
        return head(self, [f"end{i}" for i in range(3)], self.end_norms, y, self.head_relu)


class Mgln(nn.Module):
    """The multi-task global-local network: the SSM shared by every stream, the GFM on the peak
    face and the PBM on the part sequences (either may be switched off by `branches`).
    `forward(face, parts)` gives (GFM scores, PBM scores), None for a missing branch."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.ssm = Ssm(cfg)
        if cfg["branches"] in ("both", "gfm"):
            self.gfm = Gfm(cfg)
        if cfg["branches"] in ("both", "pbm"):
            self.pbm = Pbm(cfg)

    def part_map(self, k, x, b, t):
        """The k-th part's LST map [b, 1, side, side] from its crops [b·T, 3, h, w]."""
        feats = self.ssm(x, k + 1)
        return getattr(self.pbm, ("eyes", "nose", "mouth")[k])(feats, b, t)

    def forward(self, face, parts):
        g = self.gfm(self.ssm(face, 0)) if hasattr(self, "gfm") else None
        p = None
        if hasattr(self, "pbm"):
            b, t = face.shape[0], self.cfg["frames"]
            maps = [self.part_map(k, parts[k].flatten(0, 1), b, t) for k in range(3)]
            p = self.pbm.end(torch.cat(maps, 1))
        return g, p


class PlainCnn(nn.Module):
    """The baseline: four blocks of (3×3 conv without bias, batch norm, ReLU) × 2 and a 2×2
    max-pool (rounding up), global average pooling, dropout 0.3, a linear layer. Sees the face
    alone; its scores come back as the global ones."""

    CHANNELS = (32, 64, 128, 256)

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.cnn = nn.Module()
        c_in = 3
        for i, c in enumerate(self.CHANNELS):
            c = channels(cfg, c)
            block = nn.Module()
            for j in range(2):
                setattr(block, f"conv{j}", nn.Conv2d(c_in, c, 3, padding=1, bias=False))
                setattr(block, f"bn{j}", nn.BatchNorm2d(c))
                c_in = c
            setattr(self.cnn, f"block{i}", block)
        self.cnn.head = nn.Linear(c_in, cfg["classes"])
        self.dropout = nn.Dropout(0.3)

    def forward(self, face, parts=None):
        x = face
        for i in range(len(self.CHANNELS)):
            block = getattr(self.cnn, f"block{i}")
            for j in range(2):
                x = F.relu(getattr(block, f"bn{j}")(getattr(block, f"conv{j}")(x)))
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return self.cnn.head(self.dropout(x.mean(dim=(2, 3)))), None


def fuse(g, p, rule="sum", w=0.5):
    """The fused class probabilities of the two branches' scores: softmax(w·g + (1−w)·p) for
    `sum` (the authors' rule), w·softmax(g) + (1−w)·softmax(p) for `softmax-average`; one branch
    alone is its softmax."""
    if g is None:
        return p.softmax(-1)
    if p is None:
        return g.softmax(-1)
    if rule == "sum":
        return (w * g + (1 - w) * p).softmax(-1)
    return w * g.softmax(-1) + (1 - w) * p.softmax(-1)


class Network(nn.Module):
    """An exported model: the network of `model.json` with its fusion rule. `forward(face, eyes,
    nose, mouth)` returns the fused class probabilities [b, C] (what ``train predict`` reports
    per fold); `scores(...)` the two branches' raw scores."""

    def __init__(self, meta):
        super().__init__()
        self.meta = meta
        cfg = meta["model"]
        self.net = PlainCnn(cfg) if cfg.get("kind", "mgln") == "cnn" else Mgln(cfg)
        self.fusion = meta.get("fusion", "sum")
        self.fusion_weight = float(meta.get("fusion_weight", 0.5))
        # The run's evaluation averaged each sample with its mirror image (`tta_flip`).
        self.tta_flip = bool(meta.get("tta_flip", False))

    def scores(self, face, eyes, nose, mouth):
        return self.net(face, [eyes, nose, mouth])

    def forward(self, face, eyes, nose, mouth):
        g, p = self.scores(face, eyes, nose, mouth)
        return fuse(g, p, self.fusion, self.fusion_weight)

    @torch.no_grad()
    def predict(self, face, eyes, nose, mouth):
        """(probabilities, {"global": …, "local": …}) in eval mode: what ``train predict``
        reports per fold. For a model whose ``model.json`` says ``tta_flip``, the probabilities
        are the mean of the input's and its mirror image's (every crop flipped left-right), as
        the run's evaluation computed them; the scores are the input's, and the mirror image's
        are added as ``global_mirrored`` / ``local_mirrored``."""
        self.eval()
        g, p = self.scores(face, eyes, nose, mouth)
        probs = fuse(g, p, self.fusion, self.fusion_weight)
        scores = {"global": g, "local": p}
        if self.tta_flip:
            gm, pm = self.scores(*(mirror(t) for t in (face, eyes, nose, mouth)))
            probs = (probs + fuse(gm, pm, self.fusion, self.fusion_weight)) * 0.5
            scores.update(global_mirrored=gm, local_mirrored=pm)
        return probs, scores


def mirror(t):
    """A network input flipped left-right (the last axis): face [b, 3, H, W] or part crops
    [b, T, 3, h, w], each crop about its own centre."""
    return torch.flip(t, dims=[-1])


def build(cfg):
    """The bare network of a model configuration (``model.json``'s ``model``)."""
    return PlainCnn(cfg) if cfg.get("kind", "mgln") == "cnn" else Mgln(cfg)


def load_weights(module, weights):
    """Loads tch-named weights into `module`; every name must match (PyTorch's
    `num_batches_tracked` counters, which tch does not keep, excepted)."""
    missing, unexpected = module.load_state_dict(weights, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"weights do not fit the network: missing {missing}, "
                         f"unexpected {unexpected}")


def load(model_dir):
    """Loads a model directory written by ``train export``: returns (Network in eval mode, the
    parsed model.json)."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "model.json").read_text())
    net = Network(meta)
    load_weights(net.net, read_safetensors(model_dir / meta.get("weights", "weights.safetensors")))
    net.eval()
    return net, meta
