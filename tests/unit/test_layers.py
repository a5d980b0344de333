"""Imports point down (README, "Layout"): each module imports only from its own layer or the layers below it, and
no group of modules imports itself round.

Read from the source (ast), so an import inside a function counts as much as one at the top. An import under `if
TYPE_CHECKING:` runs nothing, makes no cycle, and only names a type for the checker: it is left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("carriers", "dialogs", "gateway")
SCRIPTS = ("worker", "wsgi")
# Lowest first. A module belongs to the longest name here that is it or a package holding it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("carriers",),  # carrier policy records and their arithmetic
    ("dialogs",),  # the conversation: pure, over carriers' records
    ("gateway.validation", "gateway.masking", "gateway.logs"),  # the shell's own pure helpers
    ("gateway.state",),  # Redis: every record tdbot keeps
    ("gateway.config",),  # settings
    ("gateway.runtime", "gateway.metrics"),  # what every role reaches its adapters through; what it counts
    ("gateway.delivery",),  # outbound
    ("gateway.bootstrap",),  # wires state, the routes of delivery and the settings into a runtime
    ("gateway.jobs",),  # what RQ and rq cron run
    ("gateway.service",),  # one inbound message, one atomic step
    ("gateway.channels", "gateway.web"),  # the HTTP surfaces: providers' webhooks; API, health, ops console
    ("gateway", "gateway.cli", *SCRIPTS),  # the app factory and the ways to start it
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# The pure core uses none of the shell's IO.
IO = ("flask", "flask_limiter", "flask_login", "flask_wtf", "werkzeug", "redis", "rq", "rq_dashboard", "twilio",
      "requests", "prometheus_client", "limits", "gateway")


def modules() -> dict[str, Path]:
    found = {name: ROOT / f"{name}.py" for name in SCRIPTS}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def unit_of(module: str) -> str:
    """The name in LAYERS that `module` belongs to (the bare `gateway` only for the package's own __init__)."""
    candidates = [u for u in RANK if module == u or (u != "gateway" and module.startswith(u + "."))]
    if not candidates:
        raise AssertionError(f"{module} is in no layer: place it in LAYERS (tests/unit/test_layers.py) and README")
    return max(candidates, key=len)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield from _statements(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _statements(child)


def imports(module: str) -> set[str]:
    """The project modules (and the other top-level packages) `module` imports when it runs."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        # `from gateway import config` imports the module gateway.config, not only the package.
        submodules = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
        found |= submodules or {base}
        if len(submodules) < len(node.names):
            found.add(base)
    return found


def project(name: str) -> bool:
    return name in MODULES


GRAPH = {module: {name for name in imports(module) if project(name) and name != module} for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        unit_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_and_those_below(module: str) -> None:
    rank = RANK[unit_of(module)]
    upward = sorted(name for name in GRAPH[module]
                    if name != "gateway" and RANK[unit_of(name)] > rank)  # a package's parents run first anyway
    assert upward == [], f"{module} ({unit_of(module)}) imports from above it: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if unit_of(m) in ("carriers", "dialogs")))
def test_the_pure_core_imports_nothing_of_the_shell_or_its_io(module: str) -> None:
    shell = sorted(name for name in imports(module) if name.split(".")[0] in IO)
    assert shell == [], f"{module} imports {shell}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one node (Tarjan), as sorted lists."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_modules_import_each_other_round() -> None:
    graph = {module: {name for name in names if name != "gateway"} for module, names in GRAPH.items()}
    assert cycles(graph) == []


def test_no_packages_or_layers_import_each_other_round() -> None:
    """Peers in one layer (channels/ and web/, say) may use each other one way only."""
    graph: dict[str, set[str]] = {}
    for module, names in GRAPH.items():
        graph.setdefault(unit_of(module), set()).update(
            unit_of(name) for name in names if name != "gateway" and unit_of(name) != unit_of(module))
    assert cycles(graph) == []


def test_the_check_sees_an_upward_import_and_a_cycle() -> None:
    """The rule's own tools: a state module importing web is above its rank, and two modules importing each other
    are one group."""
    assert RANK[unit_of("gateway.web.api")] > RANK[unit_of("gateway.state.store")]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "gateway.config" in imports("gateway.runtime") and "gateway.delivery.senders" not in imports(
        "gateway.runtime")  # the latter only under TYPE_CHECKING
