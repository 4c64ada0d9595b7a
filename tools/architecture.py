"""The map of the house: semlink's import graph drawn as layers, with the path of a packet.

Reads every module of shared/semlink and services with ``ast`` (nothing is imported), groups
modules into packages (``--depth``: ``semlink.streams.reference`` is its own box where it is a
package, ``semlink.streams.text`` belongs to ``semlink.streams``), and places each package one
level above the highest package it imports: level 0 imports no other package, an arrow always
points down unless packages import each other (an import circle, drawn red, its packages on one
level). Imports inside functions count (dashed), imports under ``if TYPE_CHECKING`` do not.

The packet's path (Encode RPC to decoded image) is a list of ``module:function`` steps below;
each one is looked up in the code, so a step that moved fails the run (``--check``) instead of
drifting from the text. The picture numbers the steps on their packages.

    .venv/bin/python tools/architecture.py            # docs/architecture.png + the tables in
                                                      # docs/architecture.md
    .venv/bin/python tools/architecture.py --check    # exit 1 if a step is gone or the doc's
                                                      # tables are out of date (writes nothing)
"""

from __future__ import annotations

import argparse
import ast
import itertools
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[1]
ROOTS = ((REPO / "shared", "semlink"), (REPO, "services"))
PICTURE = REPO / "docs" / "architecture.png"
DOC = REPO / "docs" / "architecture.md"


class Step(NamedTuple):
    where: str
    """``module:qualname`` (a function, method or class) the step happens in."""
    what: str


PACKET_PATH = (
    Step("services.encoder.server:EncoderServicer.Encode", "Encode RPC: budget, image, hints"),
    Step("semlink.serving.server:ServiceRuntime.run", "admission, deadline, queue, statuses"),
    Step("semlink.codec.codecs:Codec.encode", "the profile's codec, built at start-up"),
    Step("semlink.codec.encoder:encode", "checks, packet bytes, extraction, header"),
    Step("semlink.codec.encoder:semantic_layers", "caption, objects, segmentation map"),
    Step("semlink.codec.encoder:with_reference", "the reference takes the bytes left"),
    Step("semlink.streams.reference:encode_reference", "VVC at a predicted scale and QP"),
    Step("semlink.packet.container:serialize", "header, layers, CRC32C: the bytes"),
    Step("semlink.serving.client:SemlinkClient.transmit", "the client carries the packet"),
    Step("services.link.server:LinkServicer.Transmit", "Transmit RPC"),
    Step("semlink.link.emulator:LinkEmulator.transmit", "frames, airtime, loss, what arrives"),
    Step("services.decoder.server:DecoderServicer.Decode", "Decode RPC: format, size, realism"),
    Step("semlink.codec.codecs:_Decodes.decode", "the header's profile picks the models"),
    Step("semlink.codec.decoder:read_layers", "size and fingerprint checks, each layer"),
    Step("semlink.packet.container:parse", "bytes to header and layers, CRCs checked"),
    Step("semlink.streams.reference:decode_reference", "the small reference picture"),
    Step("semlink.codec.decoder:upsample", "to full size"),
    Step("semlink.restore.pixel:restore", "lite: the learned restorer at the realism"),
    Step("semlink.codec.decoder:finish", "sedic: the diffusion stage"),
    Step("services.decoder.server:image_bytes", "PNG, WebP or raw RGB in the response"),
)


# -- the graph ----------------------------------------------------------------------------------
@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    lines: int
    imports: dict[str, str] = field(default_factory=dict)
    """Imported module -> ``top`` (at import time) or ``deferred`` (inside a function)."""


def discover() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for base, package in ROOTS:
        for path in sorted((base / package).rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            lines = len(path.read_text().splitlines())
            modules[name] = Module(name, path, is_package, lines)
    for module in modules.values():
        module.imports = imports_of(module, modules)
    return modules


def imports_of(module: Module, modules: dict[str, Module]) -> dict[str, str]:
    """The project modules ``module`` imports, each ``top`` or ``deferred``."""
    found: dict[str, str] = {}
    package = module.name if module.is_package else module.name.rpartition(".")[0]

    def add(target: str, deferred: bool) -> None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != module.name and found.get(target) != "top":
            found[target] = "deferred" if deferred else "top"

    def visit(node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other, deferred)
                continue
            inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, inner)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(child, package)
                for alias in child.names:
                    full = f"{base}.{alias.name}" if base else alias.name
                    add(full if full in modules else base, inner)
            visit(child, inner)

    visit(ast.parse(module.path.read_text()), False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


@dataclass
class Graph:
    nodes: dict[str, list[Module]]
    """Package (box) -> its modules."""
    edges: dict[tuple[str, str], str]
    """(importer, imported) -> ``top`` or ``deferred`` (every import behind it deferred)."""
    level: dict[str, int] = field(default_factory=dict)
    circles: list[set[str]] = field(default_factory=list)


def node_of(name: str, modules: dict[str, Module], depth: int) -> str:
    """The box a module belongs to: its first ``depth`` parts where they name a package, else
    fewer; a ``__main__`` module is a box of its own."""
    parts = name.split(".")
    if parts[-1] == "__main__":
        return name  # an entry point (python -m ...) sits above what it starts
    for n in range(min(depth, len(parts)), 0, -1):
        prefix = ".".join(parts[:n])
        if n <= 2 or modules[prefix].is_package:
            return prefix
    return parts[0]


def build_graph(modules: dict[str, Module], depth: int) -> Graph:
    nodes: dict[str, list[Module]] = defaultdict(list)
    edges: dict[tuple[str, str], str] = {}
    for module in modules.values():
        source = node_of(module.name, modules, depth)
        nodes[source].append(module)
        for target, kind in module.imports.items():
            key = (source, node_of(target, modules, depth))
            if key[0] != key[1] and edges.get(key) != "top":
                edges[key] = kind
    linked = {v for edge in edges for v in edge}
    empty = [v for v, ms in nodes.items() if v not in linked and all(m.lines == 0 for m in ms)]
    graph = Graph({v: ms for v, ms in nodes.items() if v not in empty}, edges)
    graph.circles = [c for c in strongly_connected(graph) if len(c) > 1]
    graph.level = levels(graph)
    return graph


def strongly_connected(graph: Graph) -> list[set[str]]:
    """Tarjan's components of the import graph (an import circle: more than one package)."""
    out: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        out[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in out[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            found.append(component)

    sys.setrecursionlimit(max(1000, 4 * len(graph.nodes)))
    for v in sorted(graph.nodes):
        if v not in index:
            visit(v)
    return found


def levels(graph: Graph) -> dict[str, int]:
    """One above the highest package imported; a circle's packages share one level."""
    group = {v: frozenset(c) for c in graph.circles for v in c}
    level: dict[str, int] = {}

    def of(v: str) -> int:
        if v not in level:
            members = group.get(v, frozenset({v}))
            for m in members:
                level[m] = 0  # provisional: ends the walk around a circle
            below = [b for (a, b) in graph.edges if a in members and b not in members]
            top = 1 + max((of(b) for b in below), default=-1)
            for m in members:
                level[m] = top
        return level[v]

    for v in sorted(graph.nodes):
        of(v)
    return level


# -- the packet's path ----------------------------------------------------------------------------
def locate(step: Step, modules: dict[str, Module]) -> Module | str:
    """The module that defines the step's function, or why it is not found."""
    name, _, qualname = step.where.partition(":")
    module = modules.get(name)
    if module is None:
        return f"{step.where}: no module {name}"
    body: list[ast.stmt] = ast.parse(module.path.read_text()).body
    for part in qualname.split("."):
        match = [
            n
            for n in body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and n.name == part
        ]
        if not match:
            return f"{step.where}: {module.path.relative_to(REPO)} defines no {qualname}"
        body = match[0].body
    return module


# -- the picture --------------------------------------------------------------------------------
def order_levels(graph: Graph) -> dict[int, list[str]]:
    """Packages per level, ordered to keep arrows short (a few barycentre sweeps)."""
    rows: dict[int, list[str]] = defaultdict(list)
    for v in sorted(graph.nodes):
        rows[graph.level[v]].append(v)
    neighbours: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for _ in range(8):
        x = {v: (i + 0.5) / len(row) for row in rows.values() for i, v in enumerate(row)}
        for row in rows.values():
            row.sort(key=lambda v: sum(x[n] for n in neighbours[v]) / max(1, len(neighbours[v])))
    return dict(rows)


def short(name: str) -> str:
    if name.endswith(".__main__"):
        return "-m " + name.removesuffix(".__main__")
    return name.removeprefix("semlink.") if name != "semlink" else "semlink (facade)"


GAP = 1.35
"""Vertical distance between two levels (plot units; a box is 0.44 high)."""
ORANGE, RED, GREY = "#f28e2b", "#d62728", "#7f7f7f"


def layout(graph: Graph) -> tuple[dict[str, tuple[float, float]], float]:
    """Each package's centre, and the picture's width (plot units = inches)."""
    rows = order_levels(graph)
    fig_w = max(14.0, 2.1 * max(len(r) for r in rows.values()))
    span = fig_w - 2.5
    pos = {
        v: (0.6 + span * (i + 0.5) / len(row), GAP * level)
        for level, row in rows.items()
        for i, v in enumerate(row)
    }
    return pos, fig_w


def draw(graph: Graph, path_nodes: list[str | None], out: Path) -> None:
    """The layered picture; ``path_nodes``: the package of each step of the packet's path
    (None: a step not found)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos, fig_w = layout(graph)
    top = max(graph.level.values())
    fig, ax = plt.subplots(figsize=(fig_w, GAP * (top + 2) + 1.5))
    ax.set_xlim(-1.2, fig_w - 0.8)
    ax.set_ylim(-1.6, GAP * (top + 0.6))
    ax.axis("off")
    for level in range(top + 1):
        if level % 2 == 0:
            ax.axhspan(GAP * (level - 0.5), GAP * (level + 0.5), color="#f7f7f7", zorder=0)
        ax.text(-1.1, GAP * level, f"level {level}", va="center", fontsize=9, color="#666")
    on_path = {v for v in path_nodes if v is not None}
    boxes = {v: _box(ax, graph, v, xy, v in on_path) for v, xy in pos.items()}
    _imports(ax, graph, boxes)
    _flow(ax, path_nodes, boxes)
    for v, (x, y) in pos.items():
        numbers = ranges([i for i, w in enumerate(path_nodes, 1) if w == v])
        if numbers:
            ax.text(
                x + 0.8,
                y + 0.24,
                numbers,
                ha="left",
                va="bottom",
                fontsize=7,
                color="white",
                weight="bold",
                zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": ORANGE, "edgecolor": "none"},
            )
    legend = [
        "grey arrow: importer -> imported (solid: at import time; dashed: inside a function); "
        "red: an import circle",
        "orange: the path of a packet from the Encode RPC to the decoded image, its steps "
        "numbered as in docs/architecture.md",
        "blue boxes: services/ (the processes and their entry points); grey boxes: the semlink "
        "library",
    ]
    ax.text(-1.1, -1.0, "\n".join(legend), fontsize=8, va="center", color="#333")
    ax.set_title("semlink: packages by import level (drawn by tools/architecture.py)", fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3-5,9``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _box(ax: Any, graph: Graph, v: str, xy: tuple[float, float], on_path: bool) -> Any:
    from matplotlib.patches import FancyBboxPatch

    x, y = xy
    in_circle = any(v in c for c in graph.circles)
    box = FancyBboxPatch(
        (x - 0.78, y - 0.22),
        1.56,
        0.44,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor="#dbe9f6" if v.startswith("services") else "white",
        edgecolor=RED if in_circle else (ORANGE if on_path else "#555"),
        linewidth=2.0 if on_path or in_circle else 0.8,
        zorder=3,
    )
    ax.add_patch(box)
    lines = sum(m.lines for m in graph.nodes[v])
    ax.text(x, y + 0.05, short(v), ha="center", va="center", fontsize=8.5, weight="bold", zorder=4)
    ax.text(x, y - 0.12, f"{lines} lines", ha="center", va="center", fontsize=6.5, zorder=4)
    return box


def _imports(ax: Any, graph: Graph, boxes: dict[str, Any]) -> None:
    """Grey arrows importer -> imported (dashed: inside functions), red within a circle."""
    for (a, b), kind in sorted(graph.edges.items()):
        bad = any(a in c and b in c for c in graph.circles)
        _arrow(
            ax,
            boxes[a],
            boxes[b],
            mutation_scale=8,
            connectionstyle="arc3,rad=0.06",
            linestyle="--" if kind == "deferred" else "-",
            color=RED if bad else GREY,
            alpha=0.9 if bad else 0.3,
            linewidth=1.3 if bad else 0.7,
            zorder=1,
        )


def _flow(ax: Any, path_nodes: list[str | None], boxes: dict[str, Any]) -> None:
    """Orange arrows from each step's package to the next one's."""
    for a, b in itertools.pairwise(path_nodes):
        if a is not None and b is not None and a != b:
            _arrow(
                ax,
                boxes[a],
                boxes[b],
                mutation_scale=12,
                connectionstyle="arc3,rad=0.25",
                color=ORANGE,
                alpha=0.8,
                linewidth=1.8,
                zorder=2,
            )


def _arrow(ax: Any, start: Any, end: Any, **style: Any) -> None:
    """An arrow from box ``start`` to box ``end``, clipped at their edges."""
    from matplotlib.patches import FancyArrowPatch

    centres = [
        (b.get_x() + b.get_width() / 2, b.get_y() + b.get_height() / 2) for b in (start, end)
    ]
    ax.add_patch(FancyArrowPatch(*centres, patchA=start, patchB=end, arrowstyle="-|>", **style))


# -- the doc's tables ---------------------------------------------------------------------------
def layer_table(graph: Graph) -> str:
    """Packages per level, top first (no sizes: the table changes when the structure does)."""
    rows = ["| level | packages |", "|---|---|"]
    for level in sorted(set(graph.level.values()), reverse=True):
        names = sorted(v for v in graph.nodes if graph.level[v] == level)
        rows.append(f"| {level} | {', '.join(f'`{short(v)}`' for v in names)} |")
    if graph.circles:
        circles = "; ".join(" <-> ".join(sorted(short(v) for v in c)) for c in graph.circles)
        rows.append(f"\nImport circles (counting imports inside functions): {circles}.")
    else:
        rows.append("\nNo import circle, counting imports inside functions.")
    return "\n".join(rows)


def path_table(found: list[tuple[Step, Module]]) -> str:
    """The steps with links to their files (no line numbers: they move with every edit)."""
    rows = ["| # | where | what |", "|---|---|---|"]
    for i, (step, module) in enumerate(found, 1):
        link = f"../{module.path.relative_to(REPO).as_posix()}"
        rows.append(f"| {i} | [`{step.where}`]({link}) | {step.what} |")
    return "\n".join(rows)


def fill(doc: str, name: str, body: str) -> str:
    """``doc`` with ``body`` between its ``<!-- name -->`` and ``<!-- /name -->`` lines."""
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{DOC.relative_to(REPO)} has no <!-- {name} --> ... block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=3, help="module parts a package box keeps")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=PICTURE, help="the picture")
    args = parser.parse_args(argv)
    modules = discover()
    graph = build_graph(modules, args.depth)
    print(
        f"{len(modules)} modules in {len(graph.nodes)} packages on {len(set(graph.level.values()))}"
        f" levels, {len(graph.edges)} arrows, {len(graph.circles)} import circle(s)"
    )
    for circle in graph.circles:
        print("  circle:", " <-> ".join(sorted(circle)))
    located = [locate(step, modules) for step in PACKET_PATH]
    path_nodes: list[str | None] = []
    found: list[tuple[Step, Module]] = []
    for step, where in zip(PACKET_PATH, located, strict=True):
        if isinstance(where, str):
            path_nodes.append(None)
        else:
            path_nodes.append(node_of(where.name, modules, args.depth))
            found.append((step, where))
    missing = [where for where in located if isinstance(where, str)]
    if missing:
        print("the packet's path names code that is not there:", *missing, sep="\n  ")
        if not args.check:
            draw(graph, path_nodes, args.out)  # the rest of the path: a picture to fix it by
        return 1
    doc = DOC.read_text()
    new = fill(fill(doc, "layers", layer_table(graph)), "path", path_table(found))
    if args.check:
        if new != doc:
            print(f"{DOC.relative_to(REPO)} is out of date: run tools/architecture.py")
            return 1
        return 0
    DOC.write_text(new)
    draw(graph, path_nodes, args.out)
    print(f"wrote {args.out.relative_to(REPO)} and the tables of {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
