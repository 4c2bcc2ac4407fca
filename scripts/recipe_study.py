#!/usr/bin/env python3
"""The training-recipe study of docs/BENCHMARKS.md: one change at a time against a base experiment.

Each row lays a few keys over a shipped experiment TOML, trains it with the release `train`
binary on the same cache and folds, and reports the mean final-epoch training accuracy (measured
during the epoch, with that row's augmentation), the test accuracy (mean ± std over folds) and the
wall time. Nothing here is timed for pass/fail; the table is evidence.

    scripts/recipe_study.py --study ckplus48 [--rows a,b,...] [--folds 0,1,2] [--epochs N]
    scripts/recipe_study.py --list

Runs go to runs/study-<study>-<row>/<run>/ and the table to runs/study-<study>.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "target" / "release" / "train"

# (row, what changed, base experiment, keys laid over it)
# The network as it was before `head_batchnorm` and `head_channels` existed (step 1 of the study).
OLD_HEAD = {"head_batchnorm": False, "head_channels": [8, 8]}
E12 = {"epochs": 12}
STUDIES = {
    "ckplus48": [
        # Step 0: the shipped configuration before the study.
        ("paper", "shipped before: paper preset (Adam 1e-3, step at 9, mixup 1)", "ckplus48-cpu-paper",
         {"train": E12}),
        ("paper-no-mixup", "step 0, mixup off", "ckplus48-cpu-paper", {"train": {**E12, "mixup_alpha": 0.0}}),
        ("paper-no-step", "step 0, no lr step", "ckplus48-cpu-paper", {"train": {**E12, "lr_step_epoch": 1000}}),
        ("paper-tch-init", "step 0, tch init", "ckplus48-cpu-paper", {"train": E12, "model": {"init": "tch"}}),
        ("paper-batch-32", "step 0, batch 32", "ckplus48-cpu-paper", {"train": {**E12, "batch": 32}}),
        # Step 1: the tuned preset on the old network.
        ("step1", "tuned preset, old head", "ckplus48-cpu", {"train": E12, "model": OLD_HEAD}),
        ("step1-gfm", "step 1, GFM only", "ckplus48-cpu-gfm", {"train": E12, "model": OLD_HEAD}),
        ("step1-gfm-width-0.5", "step 1, GFM only, width 1/2", "ckplus48-cpu-gfm",
         {"train": E12, "model": {**OLD_HEAD, "width": 0.5}}),
        ("step1-width-0.5", "step 1, width 1/2", "ckplus48-cpu", {"train": E12, "model": {**OLD_HEAD, "width": 0.5}}),
        ("step1-gfm-deform-none", "step 1, GFM only, plain 3×3 convs", "ckplus48-cpu-gfm",
         {"train": E12, "model": {**OLD_HEAD, "deform": "none"}}),
        ("step1-gfm-30-epochs", "step 1, GFM only, 30 epochs", "ckplus48-cpu-gfm",
         {"train": {"epochs": 30}, "model": OLD_HEAD}),
        # Step 2: batch norm behind the SSM.
        ("step2", "step 1 + head_batchnorm", "ckplus48-cpu", {"train": E12, "model": {"head_channels": [8, 8]}}),
        ("step2-gfm", "step 2, GFM only", "ckplus48-cpu-gfm", {"train": E12, "model": {"head_channels": [8, 8]}}),
        ("step2-gfm-lr-1e-2", "step 2, GFM only, lr 1e-2", "ckplus48-cpu-gfm",
         {"train": {**E12, "lr": 1e-2}, "model": {"head_channels": [8, 8]}}),
        ("step2-gfm-width-0.25", "step 2, GFM only, width 1/4", "ckplus48-cpu-gfm",
         {"train": E12, "model": {"head_channels": [8, 8], "width": 0.25}}),
        # Step 3: a wider head (the shipped network).
        ("step3-gfm-head-64", "step 2, GFM only, head_channels [64, 32]", "ckplus48-cpu-gfm",
         {"train": E12, "model": {"head_channels": [64, 32]}}),
        ("step3-gfm", "step 2, GFM only, head_channels [128, 64]", "ckplus48-cpu-gfm", {"train": E12}),
        ("step3", "step 2 + head_channels [128, 64]", "ckplus48-cpu", {"train": E12}),
        ("step3-width-0.25", "step 3, width 1/4", "ckplus48-cpu", {"train": E12, "model": {"width": 0.25}}),
        ("step3-gfm-width-0.25", "step 3, GFM only, width 1/4", "ckplus48-cpu-gfm", {"train": E12, "model": {"width": 0.25}}),
        ("step3-30-epochs", "step 3, 30 epochs", "ckplus48-cpu", {"train": {"epochs": 30}}),
        # One change at a time from step 3 (12 epochs).
        ("step3-no-head-bn", "step 3, no head_batchnorm", "ckplus48-cpu", {"train": E12, "model": {"head_batchnorm": False}}),
        ("step3-adam", "step 3, Adam (L2) instead of AdamW", "ckplus48-cpu", {"train": {**E12, "optimizer": "adam"}}),
        ("step3-sgd", "step 3, Nesterov SGD, lr 3e-2, decay 5e-4", "ckplus48-cpu",
         {"train": {**E12, "optimizer": "sgd", "lr": 3e-2, "weight_decay": 5e-4}}),
        ("step3-cosine", "step 3, warmup 1 epoch + cosine", "ckplus48-cpu",
         {"train": {**E12, "schedule": "cosine", "warmup_epochs": 1.0}}),
        ("step3-lr-1e-3", "step 3, peak lr 1e-3", "ckplus48-cpu", {"train": {**E12, "lr": 1e-3}}),
        ("step3-no-smoothing", "step 3, no label smoothing", "ckplus48-cpu", {"train": {**E12, "label_smoothing": 0.0}}),
        ("step3-mixup", "step 3, mixup α = 1", "ckplus48-cpu", {"train": {**E12, "mixup_alpha": 1.0}}),
        ("step3-no-tta", "step 3, no flip averaging", "ckplus48-cpu", {"train": {**E12, "tta_flip": False}}),
        ("step3-small-aug", "step 3, no rotation, ±5 % shift and scale", "ckplus48-cpu",
         {"train": {**E12, "rotate": 0.0, "shift": 0.05, "scale": 0.05}}),
        ("step3-balanced", "step 3, class-balanced loss", "ckplus48-cpu", {"train": {**E12, "class_balance": "loss"}}),
        ("cnn-12-epochs", "plain CNN, 12 epochs", "ckplus48-cnn", {"train": E12}),
        # The shipped configurations as they are.
        ("tuned", "shipped ckplus48-cpu (MGLN, 40 epochs)", "ckplus48-cpu", {}),
        ("tuned-gfm", "shipped ckplus48-cpu-gfm (GFM only, 40 epochs)", "ckplus48-cpu-gfm", {}),
        ("cnn", "shipped ckplus48-cnn (plain CNN, 30 epochs)", "ckplus48-cnn", {}),
        ("paper-40-epochs", "step 0 at 40 epochs (lr step at 30)", "ckplus48-cpu-paper",
         {"train": {"epochs": 40, "lr_step_epoch": 30}}),
    ],
    "jaffe": [
        ("paper", "shipped before: paper preset (Adam 1e-3, step at 9, mixup 1)", "jaffe-cpu-paper",
         {"train": E12}),
        ("step3", "tuned preset, 12 epochs", "jaffe-cpu", {"train": E12}),
        ("step3-gfm", "tuned preset, GFM only, 12 epochs", "jaffe-cpu", {"train": E12, "model": {"branches": "gfm"}}),
        ("cnn-12-epochs", "plain CNN, 12 epochs", "jaffe-cnn", {"train": E12}),
        ("tuned", "shipped jaffe-cpu (MGLN, 40 epochs)", "jaffe-cpu", {}),
        ("cnn", "shipped jaffe-cnn (plain CNN, 30 epochs)", "jaffe-cnn", {}),
    ],
}


def overlay(base, top):
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            overlay(base[k], v)
        else:
            base[k] = v
    return base


def to_toml(d, prefix=""):
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {val(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{prefix}{k}]", to_toml(v, prefix + k + ".")]
    return "\n".join(lines)


def base_config(name):
    if name.endswith("-cpu-paper"):
        # The CPU configuration as shipped before the tuned recipe existed.
        shipped = name.removesuffix("-paper")
        cfg = tomllib.loads((ROOT / f"manifests/experiments/{shipped}.toml").read_text())
        cfg["recipe"] = "paper"
        cfg.setdefault("model", {}).pop("head_channels", None)
        cfg["model"].update({"ssm_batchnorm": True, "head_relu": False})
        cfg.setdefault("train", {}).update({"lr": 1e-3, "lr_step_epoch": 9})
        return cfg
    return tomllib.loads((ROOT / f"manifests/experiments/{name}.toml").read_text())


def run_row(study, row, base, keys, folds, epochs):
    cfg = overlay(base_config(base), json.loads(json.dumps(keys)))
    name = f"study-{study}-{row}"
    cfg["name"] = name
    if folds is not None:
        cfg["folds"] = folds
    if epochs is not None:
        cfg.setdefault("train", {})["epochs"] = epochs
    path = ROOT / "runs" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(cfg) + "\n")
    run_name = time.strftime("%Y%m%dT%H%M%S")
    start = time.time()
    subprocess.run([str(TRAIN), "run", "--config", str(path), "--run-name", run_name],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.time() - start
    run_dir = ROOT / "runs" / name / run_name
    summary = json.loads((run_dir / "summary.json").read_text())
    last = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        last[rec["fold"]] = rec
    train_acc = statistics.mean(r["train_accuracy"] for r in last.values())
    return {"row": row, "train": train_acc, "mean": summary["mean"], "std": summary["std"],
            "seconds": seconds, "config": str(path.relative_to(ROOT))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", choices=sorted(STUDIES), default="ckplus48")
    ap.add_argument("--rows", help="comma-separated rows (default: all)")
    ap.add_argument("--folds", help="comma-separated test folds (default: the experiment's)")
    ap.add_argument("--epochs", type=int, help="override train.epochs")
    ap.add_argument("--list", action="store_true", help="list the rows and exit")
    a = ap.parse_args()
    rows = STUDIES[a.study]
    if a.list:
        for row, what, base, keys in rows:
            print(f"{row:22} {what}  [{base} + {json.dumps(keys)}]")
        return 0
    if not TRAIN.exists():
        print("error: build first (make build)", file=sys.stderr)
        return 2
    wanted = a.rows.split(",") if a.rows else [r[0] for r in rows]
    folds = [int(f) for f in a.folds.split(",")] if a.folds else None
    out = ROOT / "runs" / f"study-{a.study}.md"
    lines = ["| row | what changed | train acc | test acc | time |", "|---|---|---|---|---|"]
    for row, what, base, keys in rows:
        if row not in wanted:
            continue
        r = run_row(a.study, row, base, keys, folds, a.epochs)
        line = (f"| {row} | {what} | {100 * r['train']:.1f} % | {100 * r['mean']:.1f} ± "
                f"{100 * r['std']:.1f} % | {r['seconds']:.0f} s |")
        print(line, flush=True)
        lines.append(line)
        out.write_text("\n".join(lines) + "\n")
    print(f"table: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
