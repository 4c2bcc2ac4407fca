"""A reader of the shard cache format 1.x, written from crates/shard/FORMAT.md.

Every read is checked as section 3.5 asks: header, trailer and index checksums, the offset chain,
each frame's XXH3-64, zstd's content checksum and the decompressed length, and that the planes
fill the payload exactly. A failed check raises CacheError naming the shard, record and offset.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import blake3
import numpy as np
import xxhash
import zstandard

MAGIC = b"\x89FSH\r\n\x1a\n"
FOOTER = b"FSHEND\r\n"
KNOWN_MAJOR = 1
SCHEMA_SAMPLE_META = 1
SPLITS = ("train", "validation", "test", "fold")


class CacheError(Exception):
    """A cache, shard or record that fails a check of FORMAT.md."""


def xxh3(data: bytes) -> int:
    return xxhash.xxh3_64_intdigest(data)


class _Postcard:
    """Decoder of the postcard 1.x encoding (FORMAT.md section 5)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise CacheError("metadata ends early")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self, max_bits: int = 64) -> int:
        shift = 0
        value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift >= max_bits + 7:
                raise CacheError("varint too long")
        if value >> max_bits:
            raise CacheError(f"varint {value} exceeds {max_bits} bits")
        return value

    def zigzag(self, max_bits: int = 32) -> int:
        v = self.varint(max_bits)
        return (v >> 1) ^ -(v & 1)

    def f32(self) -> float:
        if self.pos + 4 > len(self.data):
            raise CacheError("metadata ends inside an f32")
        (v,) = struct.unpack_from("<f", self.data, self.pos)
        self.pos += 4
        return v

    def f32_array(self, n: int) -> np.ndarray:
        if self.pos + 4 * n > len(self.data):
            raise CacheError("metadata ends inside an f32 array")
        a = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos)
        self.pos += 4 * n
        return a

    def string(self) -> str:
        n = self.varint()
        if self.pos + n > len(self.data):
            raise CacheError("metadata ends inside a string")
        s = self.data[self.pos : self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def option(self, read):
        tag = self.byte()
        if tag == 0:
            return None
        if tag == 1:
            return read()
        raise CacheError(f"option tag {tag}")

    def seq(self, read) -> list:
        return [read() for _ in range(self.varint())]


@dataclass
class FrameInfo:
    """Section 5.1: what found the face on one frame slot."""

    face_box: Optional[Tuple[int, int, int, int]]
    detector: str
    flags: int


@dataclass
class Record:
    """One decoded, verified record: the metadata of sections 5 and 5.1 and the planes."""

    sample_id: str
    dataset: str
    subject: str
    sequence: Optional[str]
    source: List[str]
    frame_indices: List[int]
    label: int
    split: str  # train | validation | test | fold
    fold: Optional[int]  # the fold number for split == "fold"
    landmarks: np.ndarray  # (slots, points, 2) float32; points 68 for dlib's model
    detector: str
    flags: int
    planes: Dict[str, np.ndarray]  # name -> (height, width) uint8, in stored order
    frames: List[FrameInfo] = field(default_factory=list)  # 1.1; empty for 1.0 records
    votes: List[int] = field(default_factory=list)  # 1.1; FER+ vote counts
    valence_arousal: Optional[Tuple[float, float]] = None  # 1.1; AffectNet


def decode_payload(payload: bytes) -> Record:
    """Splits a decompressed payload (section 3.2) into metadata and planes."""
    if len(payload) < 4:
        raise CacheError(f"payload of {len(payload)} bytes has no length prefix")
    (meta_len,) = struct.unpack_from("<I", payload, 0)
    meta_end = 4 + meta_len
    if meta_end > len(payload):
        raise CacheError(f"metadata length {meta_len} exceeds the payload")
    p = _Postcard(payload[4:meta_end])
    sample_id = p.string()
    dataset = p.string()
    subject = p.string()
    sequence = p.option(p.string)
    source = p.seq(p.string)
    frame_indices = p.seq(lambda: p.varint(32))
    label = p.varint(16)
    variant = p.varint(32)
    if variant > 3:
        raise CacheError(f"split variant {variant}")
    fold = p.varint(16) if variant == 3 else None
    landmarks = []
    for _ in range(p.varint()):
        n = p.varint()
        landmarks.append(p.f32_array(2 * n).reshape(n, 2))
    points = max((len(x) for x in landmarks), default=0)
    lm = np.zeros((len(landmarks), points, 2), dtype=np.float32)
    for k, x in enumerate(landmarks):
        lm[k, : len(x)] = x
    detector = p.string()
    flags = p.varint(32)
    plane_info = p.seq(lambda: (p.string(), p.varint(16), p.varint(16)))
    frames: List[FrameInfo] = []
    votes: List[int] = []
    valence_arousal = None
    if not p.at_end():
        # Section 5.1 (format 1.1); bytes after it belong to later minors and are ignored.
        frames = p.seq(
            lambda: FrameInfo(
                face_box=p.option(lambda: tuple(p.zigzag(32) for _ in range(4))),
                detector=p.string(),
                flags=p.varint(32),
            )
        )
        votes = p.seq(lambda: p.varint(16))
        valence_arousal = p.option(lambda: (p.f32(), p.f32()))
    need = sum(h * w for _, h, w in plane_info)
    if meta_end + need != len(payload):
        raise CacheError(
            f"planes need {need} bytes but {len(payload) - meta_end} follow the metadata"
        )
    planes = {}
    at = meta_end
    for name, h, w in plane_info:
        planes[name] = np.frombuffer(payload, dtype=np.uint8, count=h * w, offset=at).reshape(h, w)
        at += h * w
    return Record(
        sample_id=sample_id,
        dataset=dataset,
        subject=subject,
        sequence=sequence,
        source=source,
        frame_indices=frame_indices,
        label=label,
        split=SPLITS[variant],
        fold=fold,
        landmarks=lm,
        detector=detector,
        flags=flags,
        planes=planes,
        frames=frames,
        votes=votes,
        valence_arousal=valence_arousal,
    )


class Shard:
    """One `shard-NNNNN.fsh` file, its header, trailer and index checked on open."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        where = os.path.basename(path)
        if len(d) < 72:
            raise CacheError(f"{where}: {len(d)} bytes is shorter than header + trailer")
        if d[:8] != MAGIC:
            raise CacheError(f"{where}: bad magic")
        major, minor, schema, number, _reserved, checksum = struct.unpack_from("<HHIIIQ", d, 8)
        if xxh3(d[:24]) != checksum:
            raise CacheError(f"{where}: header checksum mismatch")
        if major != KNOWN_MAJOR:
            raise CacheError(f"{where}: format major {major} (this reader knows {KNOWN_MAJOR})")
        if schema != SCHEMA_SAMPLE_META:
            raise CacheError(f"{where}: schema id {schema}")
        self.version = (major, minor)
        self.number = number
        t = len(d) - 40
        index_offset, count, index_checksum, trailer_checksum = struct.unpack_from("<QQQQ", d, t)
        if d[t + 32 :] != FOOTER:
            raise CacheError(f"{where}: bad footer magic")
        if xxh3(d[t : t + 24]) != trailer_checksum:
            raise CacheError(f"{where}: trailer checksum mismatch")
        if index_offset + 24 * count + 40 != len(d):
            raise CacheError(f"{where}: index_offset/record_count do not fit the file length")
        index = d[index_offset : index_offset + 24 * count]
        if xxh3(index) != index_checksum:
            raise CacheError(f"{where}: index checksum mismatch")
        self.index = [struct.unpack_from("<QIIQ", index, 24 * i) for i in range(count)]
        expect = 32
        for i, (off, flen, _plen, _sum) in enumerate(self.index):
            if off != expect:
                raise CacheError(f"{where}: record {i} at offset {off}, expected {expect}")
            expect += flen
        if expect != index_offset:
            raise CacheError(f"{where}: frames end at {expect}, the index starts at {index_offset}")

    def __len__(self) -> int:
        return len(self.index)

    def payload(self, i: int) -> bytes:
        """The verified, decompressed payload of record `i`."""
        off, flen, plen, checksum = self.index[i]
        where = f"{os.path.basename(self.path)}: record {i} at byte {off}"
        frame = self.data[off : off + flen]
        if xxh3(frame) != checksum:
            raise CacheError(f"{where}: frame checksum mismatch")
        try:
            # The frame carries zstd's content checksum, which the decompressor verifies.
            payload = zstandard.ZstdDecompressor().decompress(frame, max_output_size=plen)
        except zstandard.ZstdError as e:
            raise CacheError(f"{where}: zstd: {e}") from e
        if len(payload) != plen:
            raise CacheError(f"{where}: payload is {len(payload)} bytes, the index says {plen}")
        return payload

    def record(self, i: int) -> Record:
        try:
            return decode_payload(self.payload(i))
        except CacheError as e:
            if str(e).startswith(os.path.basename(self.path)):
                raise
            raise CacheError(f"{os.path.basename(self.path)}: record {i}: {e}") from e


class Cache:
    """A cache directory: `manifest.json` checked on open, records read (and checked) on access.

    Records are numbered globally in shard order, as `global_index` in samples.parquet.
    """

    def __init__(self, directory: str):
        self.dir = os.fspath(directory)
        mpath = os.path.join(self.dir, "manifest.json")
        if not os.path.exists(mpath):
            raise CacheError(f"{self.dir}: no manifest.json (not a complete cache)")
        with open(mpath, "rb") as f:
            self.manifest = json.load(f)
        m = self.manifest
        if m["format"]["major"] != KNOWN_MAJOR:
            raise CacheError(f"{self.dir}: format major {m['format']['major']}")
        if m["schema_id"] != SCHEMA_SAMPLE_META:
            raise CacheError(f"{self.dir}: schema id {m['schema_id']}")
        self.class_names: List[str] = list(m["class_names"])
        self.key: str = m["key"]
        self._shards: Dict[int, Shard] = {}
        self._starts = []
        n = 0
        for s in m["shards"]:
            self._starts.append(n)
            n += s["samples"]
        if n != m["samples"]:
            raise CacheError(f"{self.dir}: shard sample counts add to {n}, manifest says {m['samples']}")
        self._len = n

    def __len__(self) -> int:
        return self._len

    def shard(self, k: int) -> Shard:
        if k not in self._shards:
            entry = self.manifest["shards"][k]
            s = Shard(os.path.join(self.dir, entry["file"]))
            if len(s) != entry["samples"]:
                raise CacheError(f"{entry['file']}: {len(s)} records, the manifest says {entry['samples']}")
            self._shards[k] = s
        return self._shards[k]

    def locate(self, i: int) -> Tuple[int, int]:
        if not 0 <= i < self._len:
            raise IndexError(i)
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return k, i - self._starts[k]

    def __getitem__(self, i: int) -> Record:
        k, j = self.locate(i)
        return self.shard(k).record(j)

    def __iter__(self) -> Iterator[Record]:
        for i in range(self._len):
            yield self[i]

    def verify(self) -> int:
        """Checks every shard file's size and blake3 against the manifest and every record's
        checksums and decoding; returns the number of records. Raises CacheError on the first
        failure."""
        n = 0
        for k, entry in enumerate(self.manifest["shards"]):
            path = os.path.join(self.dir, entry["file"])
            with open(path, "rb") as f:
                data = f.read()
            if len(data) != entry["bytes"]:
                raise CacheError(f"{entry['file']}: {len(data)} bytes, the manifest says {entry['bytes']}")
            if blake3.blake3(data).hexdigest() != entry["blake3"]:
                raise CacheError(f"{entry['file']}: blake3 differs from the manifest")
            s = self.shard(k)
            for j in range(len(s)):
                s.record(j)
                n += 1
        return n

    def samples(self):
        """`samples.parquet` as a pyarrow Table."""
        import pyarrow.parquet as pq

        return pq.read_table(os.path.join(self.dir, "samples.parquet"))

    def landmarks(self):
        """`landmarks.parquet` (format 1.1) as a pyarrow Table."""
        import pyarrow.parquet as pq

        return pq.read_table(os.path.join(self.dir, "landmarks.parquet"))

    def failures(self):
        """`failures.parquet` as a pyarrow Table."""
        import pyarrow.parquet as pq

        return pq.read_table(os.path.join(self.dir, "failures.parquet"))
