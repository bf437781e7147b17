"""The import rule of docs/architecture.md, checked on the source: no import cycle between modules,
and every import between packages goes down the layers (never up, never sideways)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"

# Lowest first. A package imports only packages of lower layers (and itself); the adapters on top
# (the application, the CLI, the demo, every `router` module, the console, the FHIR facade) may
# import anything below them. The same table is in docs/architecture.md.
LAYERS: list[set[str]] = [
    # cross-cutting: pure helpers, then the database and errors, then what builds on them
    {"errors", "clock", "destinations", "logging", "reference", "money", "french", "embedded_db", "migrate",
     "observability", "reports_process", "workers", "direct"},
    {"db", "fields"},
    {"problems", "config"},
    {"tenancy", "pagination", "batches", "openapi"},
    # the domains, the tenant first
    {"compensation"},
    {"cpts"},
    {"practitioners"},
    {"accounts"},
    {"auth", "body_limit"},
    {"idempotency", "audit"},
    {"routing"},
    {"slots"},
    {"orientation"},
    {"notifications"},
    {"bookings"},
    {"imports", "reporting", "retention", "connectors"},
    {"flows"},
]  # fmt: skip
ADAPTER_PACKAGES = {"main", "cli", "demo", "models", "health", "console", "fhir", "migrations"}
LAYER_OF = {package: index for index, layer in enumerate(LAYERS) for package in layer}


def module_name(path: Path) -> str:
    parts = ["service", *path.relative_to(SERVICE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the service modules it imports (at any depth of its code, lazy imports included)."""
    modules = {module_name(path): path for path in SERVICE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name.split(".")[0] == "service"}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "service":
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    graph[name].add(submodule if submodule in modules else node.module)
        graph[name].discard(name)
    return graph


def package_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else module


def is_adapter(module: str) -> bool:
    return package_of(module) in ADAPTER_PACKAGES or module.endswith(".router")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_has_a_place_in_the_layers() -> None:
    packages = {package_of(module_name(p)) for p in SERVICE.rglob("*.py")} - {"service"}
    unplaced = packages - set(LAYER_OF) - ADAPTER_PACKAGES
    assert not unplaced, f"add {sorted(unplaced)} to LAYERS (and docs/architecture.md)"


def test_no_import_cycle_between_modules() -> None:
    assert cycles(import_graph()) == []


def wrong_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in graph.items():
        source = package_of(module)
        for target in imported:
            goal = package_of(target)
            if goal == source or goal == "service":
                continue
            if is_adapter(module):
                continue  # adapters sit on top
            if is_adapter(target):
                wrong.append(f"{module} imports the adapter {target}")
            elif LAYER_OF[goal] >= LAYER_OF[source]:
                wrong.append(f"{module} ({source}, layer {LAYER_OF[source]}) imports {target} (layer {LAYER_OF[goal]})")
    return wrong


def test_imports_go_down_the_layers() -> None:
    assert wrong_imports(import_graph()) == []


def test_no_two_domain_packages_import_each_other() -> None:
    reaches: dict[str, set[str]] = defaultdict(set)
    for module, imported in import_graph().items():
        if not is_adapter(module):
            reaches[package_of(module)] |= {package_of(t) for t in imported} - {package_of(module)}
    mutual = sorted(
        {tuple(sorted((a, b))) for a, targets in reaches.items() for b in targets if a in reaches.get(b, ())}
    )
    assert mutual == []


def test_the_checker_sees_a_cycle_and_a_wrong_direction() -> None:
    """The helpers above can fail: a made-up graph with a cycle and an upward import."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert wrong_imports({"service.slots.service": {"service.bookings.service"}}) != []  # upward
    assert wrong_imports({"service.reporting.service": {"service.imports.service"}}) != []  # sideways
    assert wrong_imports({"service.flows.withdrawal": {"service.slots.router"}}) != []  # into an adapter
    assert wrong_imports({"service.slots.router": {"service.flows.withdrawal"}}) == []  # adapters on top
