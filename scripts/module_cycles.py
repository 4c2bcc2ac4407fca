#!/usr/bin/env python3
"""Module circles in the workspace's crates: modules that depend on each other, directly or
around a loop.

Every `crate::a::b::…` and `super::…` path in a crate's sources (in `use` lines and inline) is an
edge from the module of the file it is in to the module it names (the longest prefix that is a
module of the crate). Edges are compared between siblings: an edge from `report::ablation` to
`sweep` is an edge from `report` to `sweep` at the crate's root; one from `report::run` to
`report::metrics` is an edge between those two inside `report`. A parent using its children (or a
child its parent) is how Rust modules are built and is not an edge. Any strongly connected set of
two or more siblings is a circle, printed with the places that make it. Exit status 1 when there is
one.

    scripts/module_cycles.py [CRATE_DIR …]    # default: every crates/*/src
"""

import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^;]*)\};", re.S)


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def references(text: str, here: tuple, is_mod_file: bool):
    """(line, absolute path) of every crate:: / super:: path in `text`."""
    # `super` of a `mod.rs` (or lib.rs) is the parent of its own module; of `x.rs`, of x.
    base = here if is_mod_file else here
    text = re.sub(r"//[^\n]*", "", text)
    found = []

    def absolute(root: str, rest: list) -> tuple:
        if root == "crate":
            return tuple(rest)
        parent = list(base[:-1])
        while rest and rest[0] == "super":
            rest = rest[1:]
            parent = parent[:-1]
        return tuple(parent + rest)

    for m in USE_GROUP.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        prefix = [p for p in m.group(2).split("::") if p]
        for item in re.split(r",", m.group(3)):
            item = item.strip().split(" as ")[0]
            if not item or item in ("self", "*"):
                if item == "self":
                    found.append((line, absolute(m.group(1), prefix)))
                continue
            head = [p for p in item.split("::") if p and p != "{"]
            found.append((line, absolute(m.group(1), prefix + head)))
    for m in PATH.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        rest = [p for p in m.group(2).split("::") if p]
        found.append((line, absolute(m.group(1), rest)))
    return found


def crate_edges(src: Path):
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f): f for f in files}
    edges = {}  # (parent, a, b) -> [place]
    for f in files:
        here = module_of(src, f)
        is_mod = f.name in ("mod.rs", "lib.rs", "main.rs")
        text = f.read_text()
        for line, path in references(text, here if is_mod else here, is_mod):
            # The longest prefix that is a module.
            target = max(
                (path[:k] for k in range(len(path) + 1) if path[:k] in modules),
                key=len,
            )
            # Siblings under the deepest common parent.
            k = 0
            while k < min(len(here), len(target)) and here[k] == target[k]:
                k += 1
            if k >= len(here) or k >= len(target):
                continue  # one contains the other: parent and child
            a, b = here[k], target[k]
            edges.setdefault((here[:k], a, b), []).append(f"{f}:{line}")
    return edges


def cycles(edges):
    out = []
    groups = {}
    for (parent, a, b), places in edges.items():
        groups.setdefault(parent, {}).setdefault(a, {})[b] = places
    for parent, graph in sorted(groups.items()):
        nodes = set(graph) | {b for g in graph.values() for b in g}
        index, low, stack, on, sccs = {}, {}, [], set(), []
        counter = [0]

        def strong(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in graph.get(v, {}):
                if w not in index:
                    strong(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    sccs.append(sorted(comp))

        for v in sorted(nodes):
            if v not in index:
                strong(v)
        for comp in sccs:
            places = [
                f"{a} -> {b}: {graph[a][b][0]}" + (f" (+{len(graph[a][b]) - 1})" if len(graph[a][b]) > 1 else "")
                for a in comp
                for b in comp
                if b in graph.get(a, {})
            ]
            out.append(("::".join(parent) or "crate", comp, places))
    return out


def main():
    roots = [Path(a) for a in sys.argv[1:]] or sorted(Path("crates").glob("*/src"))
    bad = 0
    for src in roots:
        found = cycles(crate_edges(src))
        name = src.parent.name
        if not found:
            print(f"{name}: no module circle")
        for parent, comp, places in found:
            bad += 1
            print(f"{name}: circle in {parent}: {' <-> '.join(comp)}")
            for p in places:
                print(f"    {p}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
