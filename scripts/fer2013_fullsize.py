#!/usr/bin/env python3
"""A FER2013-sized stand-in: 35,887 rows in FER2013's exact csv layout, built from the 3,000-row
sample of ../shared, for timing `prep build` at full scale where the full csv is not on the
machine. Row i is sample row i mod 3000 under variant i div 3000 (mirror, one-pixel shift,
brightness step), so every row is a real face and the variants are distinct images; the sample's
own exact duplicates stay duplicates within each variant. Deterministic: the same input gives the
same bytes.

usage: fer2013_fullsize.py SAMPLE.csv OUT.csv [ROWS]  (ROWS default 35887, FER2013's count)
"""
import sys

SIDE = 48


def variant(pixels, k):
    img = [pixels[r * SIDE:(r + 1) * SIDE] for r in range(SIDE)]
    if k & 1:
        img = [row[::-1] for row in img]
    shift = (k >> 1) % 3 - 1  # -1, 0, +1 columns, edge replicated
    if shift:
        img = [row[1:] + row[-1:] if shift > 0 else row[:1] + row[:-1] for row in img]
    step = (k // 6) * 7  # 0, 7, 14 grey levels brighter
    return [min(255, v + step) for row in img for v in row]


def main():
    src, out = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 35887
    with open(src, newline="") as f:
        header = f.readline().rstrip("\r\n")
        rows = [line.rstrip("\r\n").split(",") for line in f if line.strip()]
    parsed = [(r[0], [int(v) for v in r[1].split()], r[2]) for r in rows]
    with open(out, "w", newline="") as f:
        f.write(header + "\n")
        for i in range(total):
            label, pixels, usage = parsed[i % len(parsed)]
            k = i // len(parsed)
            px = pixels if k == 0 else variant(pixels, k)
            f.write(f"{label},{' '.join(map(str, px))},{usage}\n")


if __name__ == "__main__":
    main()
