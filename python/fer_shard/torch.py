"""A `torch.utils.data.Dataset` over a cache (needs torch)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .reader import Cache


class ShardDataset(torch.utils.data.Dataset):
    """Samples of a cache as `(planes, label)`.

    `split`: keep records of this split kind (`train`, `validation`, `test`, `fold`) [all].
    `folds`: with split="fold", keep these fold numbers [all]; `exclude_fold`: drop one fold (the
    training side of a k-fold protocol). `planes`: plane names returned, in order [("face",)]; one
    name gives a (1, h, w) float32 tensor in [0, 1], several a tuple of them. `transform` is applied
    to that result. Records are selected from `samples.parquet` (no shard is read to filter) and
    read, verified, on access; each worker opens the shards itself.
    """

    def __init__(
        self,
        cache,
        split: Optional[str] = None,
        folds: Optional[Sequence[int]] = None,
        exclude_fold: Optional[int] = None,
        planes: Sequence[str] = ("face",),
        transform: Optional[Callable] = None,
    ):
        self.cache = cache if isinstance(cache, Cache) else Cache(cache)
        table = self.cache.samples()
        index = np.asarray(table.column("global_index").to_pylist(), dtype=np.int64)
        kinds = np.asarray(table.column("split").to_pylist())
        fold = np.asarray(table.column("fold").to_pylist(), dtype=np.int64)
        keep = np.ones(len(index), dtype=bool)
        if split is not None:
            keep &= kinds == split
        if folds is not None:
            keep &= np.isin(fold, np.asarray(list(folds), dtype=np.int64))
        if exclude_fold is not None:
            keep &= fold != exclude_fold
        self.indices = index[keep]
        self.labels = np.asarray(table.column("label").to_pylist(), dtype=np.int64)[keep]
        self.planes = tuple(planes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        rec = self.cache[int(self.indices[i])]
        xs = tuple(torch.from_numpy(rec.planes[p].astype(np.float32) / 255.0)[None] for p in self.planes)
        x = xs[0] if len(xs) == 1 else xs
        if self.transform is not None:
            x = self.transform(x)
        return x, rec.label
