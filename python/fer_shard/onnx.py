"""ONNX export of a model directory from ``train export``, and the parity check against
``train predict``.

    python -m fer_shard.onnx export MODEL_DIR [--out MODEL_DIR/model.onnx]
    python -m fer_shard.onnx check MODEL_DIR DUMP_DIR [--onnx MODEL_DIR/model.onnx]

``export`` runs ``torch.onnx.export`` on :class:`fer_shard.mgln.Network` with a dynamic batch
dimension: inputs ``face``, ``eyes``, ``nose``, ``mouth`` (shapes in ``model.json``'s ``input``;
the graph keeps those the network uses: the CNN baseline's is ``face`` alone),
outputs ``probabilities`` and the branches' raw ``global`` / ``local`` scores (those the network
has). ``check`` feeds the inputs ``train predict --fold K --dump-crops DUMP_DIR`` saved to the
PyTorch module (and, with ``--onnx``, to ONNX Runtime) and prints, as JSON, the largest absolute
differences from the scores ``train predict`` computed; it exits 1 when one exceeds the bound
(PyTorch 1e-5, ONNX Runtime 1e-4). With several inputs, ONNX Runtime also runs them as one
batch (the dynamic batch dimension) and each row is checked the same way.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from . import mgln

PYTORCH_BOUND = 1e-5
ONNX_BOUND = 1e-4


class _Exported(torch.nn.Module):
    """The network with a fixed tuple of outputs: probabilities, then the scores it has."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        cfg = net.meta["model"]
        kind = cfg.get("kind", "mgln")
        self.has_global = kind == "cnn" or cfg["branches"] in ("both", "gfm")
        self.has_local = kind != "cnn" and cfg["branches"] in ("both", "pbm")

    def output_names(self):
        return (["probabilities"] + (["global"] if self.has_global else [])
                + (["local"] if self.has_local else []))

    def forward(self, face, eyes, nose, mouth):
        g, p = self.net.scores(face, eyes, nose, mouth)
        out = [mgln.fuse(g, p, self.net.fusion, self.net.fusion_weight)]
        if self.has_global:
            out.append(g)
        if self.has_local:
            out.append(p)
        return tuple(out)


def example_inputs(meta, batch=2):
    """Random inputs of the shapes model.json's `input` gives, `batch` samples."""
    inp = meta["input"]
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.randn(batch, *inp[k], generator=gen) for k in ("face", "eyes", "nose",
                                                                      "mouth"))


def export(model_dir, out=None, opset=18):
    """Writes the ONNX graph of the model in `model_dir` (default `model_dir/model.onnx`)."""
    model_dir = Path(model_dir)
    out = Path(out) if out else model_dir / "model.onnx"
    net, meta = mgln.load(model_dir)
    wrapped = _Exported(net).eval()
    names = ["face", "eyes", "nose", "mouth"]
    dynamic = {n: {0: "batch"} for n in names}
    dynamic.update({n: {0: "batch"} for n in wrapped.output_names()})
    # The TorchScript-based exporter: the LSTM becomes one ONNX LSTM node.
    torch.onnx.export(wrapped, example_inputs(meta), str(out), input_names=names,
                      output_names=wrapped.output_names(), dynamic_axes=dynamic,
                      opset_version=opset, dynamo=False)
    return out


def _max_diff(a, b):
    return float((a.float() - b.float()).abs().max())


def _run(session, wanted, args):
    """One ONNX Runtime run on (face, eyes, nose, mouth), the outputs by name."""
    feeds = {n: t.numpy() for n, t in zip(("face", "eyes", "nose", "mouth"), args) if n in wanted}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def check(model_dir, dump_dir, onnx_path=None):
    """Largest |difference| between train predict's dumped scores and the PyTorch module's (and
    ONNX Runtime's), per output, over every input dumped in `dump_dir`."""
    net, meta = mgln.load(model_dir)
    fold = meta["fold"]["name"]
    session = None
    if onnx_path:
        import onnxruntime as ort  # installed into the .venv by `make setup`
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        # A graph keeps the inputs it uses: the CNN baseline's is `face` alone.
        wanted = {i.name for i in session.get_inputs()}
    worst = {"pytorch": {}, "onnxruntime": {}}
    inputs_seen = 0
    batch_args, batch_want = [], []
    for d in sorted(Path(dump_dir).iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        if not (d / "inputs.safetensors").exists():
            continue
        inputs_seen += 1
        x = mgln.read_safetensors(d / "inputs.safetensors")
        rust = mgln.read_safetensors(d / "outputs.safetensors")
        args = [x["face"], x["eyes"], x["nose"], x["mouth"]]
        probs, scores = net.predict(*args)
        ours = {"probabilities": probs[0], **scores}
        if session is not None:
            onnx_out = _run(session, wanted, args)
            if net.tta_flip:
                # The graph is the network alone: the mirror image is a second run, averaged
                # in as `train predict` and `Network.predict` do.
                flipped = _run(session, wanted, [mgln.mirror(t) for t in args])
                onnx_out["probabilities"] = (onnx_out["probabilities"]
                                             + flipped["probabilities"]) * 0.5
                for what in ("global", "local"):
                    if what in flipped:
                        onnx_out[f"{what}_mirrored"] = flipped[what]
        batch_args.append(args)
        batch_want.append(rust)
        for what, t in ours.items():
            key = f"{fold}.{what}"
            if t is None or key not in rust:
                continue
            want = rust[key].reshape(-1)
            got = t.reshape(-1)
            w = worst["pytorch"]
            w[what] = max(w.get(what, 0.0), _max_diff(got, want))
            if session is not None and what in onnx_out:
                o = torch.from_numpy(onnx_out[what]).reshape(-1)
                w = worst["onnxruntime"]
                w[what] = max(w.get(what, 0.0), _max_diff(o, want))
    if inputs_seen == 0:
        raise SystemExit(f"{dump_dir}: no inputs.safetensors (train predict --dump-crops writes them)")
    if session is not None and inputs_seen > 1:
        # The dynamic batch dimension: every input in one batch, each row against its own.
        feeds = {n: torch.cat([a[k] for a in batch_args]).numpy()
                 for k, n in enumerate(("face", "eyes", "nose", "mouth")) if n in wanted}
        names = [o.name for o in session.get_outputs()]
        out = dict(zip(names, session.run(None, feeds)))
        if net.tta_flip:
            stacked = [torch.cat([a[k] for a in batch_args]) for k in range(4)]
            flipped = _run(session, wanted, [mgln.mirror(t) for t in stacked])
            out["probabilities"] = (out["probabilities"] + flipped["probabilities"]) * 0.5
        w = worst.setdefault("onnxruntime_batched", {})
        for what, rows in out.items():
            for r, rust in enumerate(batch_want):
                key = f"{fold}.{what}"
                if key in rust:
                    d = _max_diff(torch.from_numpy(rows[r]).reshape(-1), rust[key].reshape(-1))
                    w[what] = max(w.get(what, 0.0), d)
    return {"inputs": inputs_seen, "fold": fold, "bounds": {"pytorch": PYTORCH_BOUND,
                                                           "onnxruntime": ONNX_BOUND},
            "max_abs_difference": worst if session is not None else {"pytorch": worst["pytorch"]}}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fer_shard.onnx", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write MODEL_DIR/model.onnx")
    e.add_argument("model_dir")
    e.add_argument("--out", default=None, help="the .onnx file [default: MODEL_DIR/model.onnx]")
    e.add_argument("--opset", type=int, default=18, help="ONNX opset [default: 18]")
    c = sub.add_parser("check", help="compare with train predict --dump-crops output")
    c.add_argument("model_dir")
    c.add_argument("dump_dir")
    c.add_argument("--onnx", default=None, help="also run this .onnx file in ONNX Runtime")
    a = ap.parse_args(argv)
    if a.cmd == "export":
        out = export(a.model_dir, a.out, a.opset)
        print(f"written: {out}")
        return 0
    r = check(a.model_dir, a.dump_dir, a.onnx)
    print(json.dumps(r, indent=2))
    bad = [(k, v) for k, v in r["max_abs_difference"].get("pytorch", {}).items() if v > PYTORCH_BOUND]
    for k in ("onnxruntime", "onnxruntime_batched"):
        bad += [(f"{k}.{n}", v) for n, v in r["max_abs_difference"].get(k, {}).items()
                if v > ONNX_BOUND]
    if bad:
        print(f"over the bounds: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
