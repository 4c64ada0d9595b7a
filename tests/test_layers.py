"""The house's layers, read from the source: every import of shared/semlink and services
points down the layers below, and no two modules import each other, directly or round a
circle.

An import counts wherever it is written: at the top of a module, inside a function (a
function-level import that points up is still a circle, only a later one) and inside an
``if TYPE_CHECKING:`` block (it never runs, but a reader follows it: a type named in a
signature is a dependency like any other). Only ``semlink`` and ``services`` modules are
nodes; third-party imports are not looked at.

A module that imports a package's name (``from semlink.streams.reference import
decode_reference``) depends on that package's ``__init__``; ``from semlink.x import y``
where ``y`` is a module depends on ``semlink.x.y``. A package's ``__init__`` that imports
its own children is the usual shape; a child that imports a name from its parent's
``__init__`` is an arrow like any other (with the first, a circle). Only the root packages
(``semlink``, ``services``) are left out: Python imports them before any of their modules,
and ``semlink``'s ``__init__`` holds the version and names it imports lazily, on first use.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {REPO / "shared" / "semlink": REPO / "shared", REPO / "services": REPO}
ROOT_PACKAGES = ("semlink", "services")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "semlink.errors",
            "semlink.calls",
            "semlink.config",
            "semlink._torchvision",
            "semlink.v1",
        ),
    ),
    ("data", ("semlink.packet", "semlink.entropy", "semlink.imaging", "semlink.budget")),
    ("infrastructure", ("semlink.obs", "semlink.serving", "semlink.link")),
    ("streams", ("semlink.streams",)),
    ("models", ("semlink.models", "semlink.profiles")),
    ("stages", ("semlink.restore", "semlink.extract", "semlink.quality")),
    ("resolver", ("semlink.resolver",)),
    ("codec", ("semlink.codec",)),
    ("applications", ("semlink.eval", "semlink.train")),
    ("edge", ("semlink.cli", "semlink.demo", "semlink.default_codecs", "services", "semlink")),
)
"""Bottom first. A module may import modules of its own layer and of the layers below it,
never above. A module belongs to the layer of the longest prefix that names it (so
``semlink`` itself, the package's lazy ``encode``/``decode``, is the edge, while
``semlink.errors`` is the base). ``serving``, ``obs`` and ``link`` sit below the streams:
the services' machinery knows packets and errors, never the codec (the servicers in
services/ call it)."""


def modules() -> dict[str, Path]:
    """Module name -> file, for every .py file under the roots."""
    found = {}
    for root, base in ROOTS.items():
        for path in root.rglob("*.py"):
            name = ".".join(path.relative_to(base).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imported(node: ast.AST, package: str) -> Iterator[str]:
    """The dotted names an import statement names (relative ones made absolute)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
            yield f"{base}.{alias.name}"  # a module, or a name of module `base`


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {module it imports: line of the first such import}."""
    known = modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, package):
                found = owner(target)
                if found is None or found == name or found in ROOT_PACKAGES:
                    continue  # third-party, itself, or the root package (imported first)
                edges.setdefault(found, getattr(node, "lineno", 0))
        graph[name] = edges
    return graph


def layer_of(module: str) -> int:
    best, length = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(f"{prefix}.")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a deep graph never meets the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _edge(graph: dict[str, dict[str, int]], source: str, target: str) -> str:
    path = modules()[source].relative_to(REPO)
    return f"{source} -> {target} ({path}:{graph[source][target]})"


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in modules() if layer_of(m) < 0)
    assert not unplaced, f"modules in no layer (add them to LAYERS): {', '.join(unplaced)}"


def test_no_import_circles() -> None:
    graph = import_graph()
    found = cycles(graph)
    described = []
    for component in found:
        members = set(component)
        arrows = [_edge(graph, s, t) for s in component for t in graph[s] if t in members]
        described.append(f"{' <-> '.join(component)}:\n    " + "\n    ".join(arrows))
    assert not found, f"{len(found)} import circle(s):\n" + "\n".join(described)


def test_every_import_points_down_the_layers() -> None:
    graph = import_graph()
    upward = [
        f"{_edge(graph, source, target)}: {LAYERS[layer_of(source)][0]} imports "
        f"{LAYERS[layer_of(target)][0]}"
        for source, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(source)
    ]
    assert not upward, "imports that point up the layers:\n  " + "\n  ".join(upward)


def test_the_graph_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    """The walk finds imports wherever they are written (what the tests above rely on)."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from semlink.codec import Codec\n"
        "def f():\n    from semlink.resolver import Resolver\n"
        "    import semlink.streams.text\n"
        "from . import imaging\n"
    )
    tree = ast.parse(source)
    names = [t for node in ast.walk(tree) for t in _imported(node, "semlink.packet")]
    assert {"semlink.codec.Codec", "semlink.resolver.Resolver", "semlink.streams.text"} <= set(
        names
    )
    assert "semlink.packet.imaging" in names


def test_a_planted_circle_and_an_upward_arrow_are_found() -> None:
    """What the checks above would report: the circle's members, and the layers an upward
    arrow crosses."""
    graph = {
        "semlink.errors": {"semlink.codec.encoder": 3},
        "semlink.codec.encoder": {"semlink.resolver": 1},
        "semlink.resolver": {"semlink.errors": 2},
        "semlink.imaging": {},
    }
    assert cycles(graph) == [["semlink.codec.encoder", "semlink.errors", "semlink.resolver"]]
    assert layer_of("semlink.errors") < layer_of("semlink.codec.encoder")
    assert layer_of("semlink") == layer_of("services.cli") == len(LAYERS) - 1
