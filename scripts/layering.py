#!/usr/bin/env python3
"""The harness crate's layering rules, checked from its source text.

1. No harness source file is over 600 lines.
2. No module but `main.rs` imports `cli` (subcommands' argument types live with them and
   convert into a typed config; nothing reaches back into the command line).
3. No import cycle between the harness's top-level modules: module M (harness/src/M.rs
   and everything under harness/src/M/) depends on N when its code names `crate::N`.

Prints each breach and exits 1 if there is one; otherwise prints the module graph's size.
Usage: scripts/layering.py [--graph]
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "harness" / "src"
MAX_LINES = 600


def top_module(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def crate_refs(text: str) -> set[str]:
    """Top-level module names named after `crate::`, including inside `crate::{a, b::c}`."""
    text = re.sub(r"//[^\n]*", "", text)
    names = set()
    for m in re.finditer(r"\bcrate::", text):
        rest = text[m.end():]
        if rest.startswith("{"):
            depth, item, i = 0, "", 1
            while i < len(rest):
                c = rest[i]
                if c == "{":
                    depth += 1
                elif c == "}":
                    if depth == 0:
                        break
                    depth -= 1
                if depth == 0 and c == ",":
                    names.add(item.strip().split("::")[0])
                    item = ""
                elif depth == 0:
                    item += c
                i += 1
            names.add(item.strip().split("::")[0])
        else:
            ident = re.match(r"[A-Za-z_][A-Za-z0-9_]*", rest)
            if ident:
                names.add(ident.group(0))
    return {n for n in names if n and n != "self"}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    files = sorted(SRC.rglob("*.rs"))
    modules = {top_module(f) for f in files} - {"lib", "main"}
    breaches = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for f in files:
        text = f.read_text()
        lines = text.count("\n")
        rel = f.relative_to(SRC.parent.parent)
        if lines > MAX_LINES:
            breaches.append(f"{rel}: {lines} lines (at most {MAX_LINES})")
        m = top_module(f)
        if m in ("lib", "main"):
            continue
        refs = crate_refs(text) & modules
        if "cli" in refs and m != "cli":
            breaches.append(f"{rel}: imports crate::cli")
        graph[m] |= refs - {m}
    for comp in cycles(graph):
        breaches.append("import cycle between " + ", ".join(comp))
    if "--graph" in sys.argv:
        for m in sorted(graph):
            print(f"{m} -> {', '.join(sorted(graph[m]))}")
    for b in breaches:
        print(b)
    edges = sum(len(v) for v in graph.values())
    print(f"{len(files)} files, {len(modules)} modules, {edges} module edges: "
          f"{'ok' if not breaches else f'{len(breaches)} breaches'}")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
