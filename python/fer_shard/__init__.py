"""Read fer-mgln shard caches (format 1.x, crates/shard/FORMAT.md) from Python.

    >>> import fer_shard
    >>> cache = fer_shard.Cache("data/cache/<name>-<key16>")
    >>> cache.verify(); rec = cache[0]; rec.planes["face"].shape

The torch Dataset is in :mod:`fer_shard.torch` (imported only when torch is installed).
"""

from .reader import Cache, CacheError, FrameInfo, Record, Shard, decode_payload

__all__ = ["Cache", "CacheError", "FrameInfo", "Record", "Shard", "decode_payload"]
__version__ = "0.1.0"
