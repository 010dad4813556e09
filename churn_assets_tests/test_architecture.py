"""The house a newcomer walks into: stages in flow order, each importing only those before it,
no import cycle between packages or files, and no room too big to find one's way in.

Read from the source as text (``ast``), so a rule broken anywhere in the package fails here, not
only where a test happens to import it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "churn_assets"

# The stages in the order of the flow (README, "Where things are"). A module may import what
# stands in its own layer or an earlier one, never a later one.
LAYERS = [
    [
        "keys",
        "settings",
        "partitions",
        "warehouse",
        "dagster_internals",
        "run_failures",
        "quiet",
        "readable",
        "progress",
    ],
    ["home_lock", "simulator", "landing", "online"],
    ["alerts"],
    ["resources"],
    ["modeling"],
    ["raw"],
    ["features"],
    ["outcomes"],
    ["training"],
    ["scoring"],
    ["monitoring"],
    ["performance"],
    ["reports"],
    ["automation"],
    ["definitions", "replay"],
    ["report", "retraction"],
    ["serving"],
    ["cli"],
]
# The model kernel every stage shares imports none of them.
KERNEL_NEVER_IMPORTS = {"training", "scoring", "monitoring", "performance", "automation"}
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 600
# A longer function says why on the line above its definition (or its first decorator).
LONG_FUNCTION_REASON = "# Long:"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's ``__init__`` for a package)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not node.module.startswith("churn_assets"):
                    continue
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    edges[name].add(submodule if submodule in modules else node.module)
            elif isinstance(node, ast.Import):
                edges[name] |= {a.name for a in node.names if a.name.startswith("churn_assets")}
    return edges


def _stage(module: str) -> str:
    """The stage a module belongs to: its package's or its own name under churn_assets."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    return _imports(_modules())


def test_every_stage_has_its_place_in_the_flow() -> None:
    placed = {stage for layer in LAYERS for stage in layer}
    stages = {_stage(m) for m in _modules()} - {"churn_assets"}
    assert stages <= placed, f"not placed in LAYERS: {sorted(stages - placed)}"


def test_no_import_cycle_between_files(imports: dict[str, set[str]]) -> None:
    assert _cycles(imports) == []


def test_no_import_cycle_between_packages(imports: dict[str, set[str]]) -> None:
    stages: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports.items():
        stages[_stage(module)] |= {_stage(t) for t in targets} - {_stage(module)}
    assert _cycles(stages) == []


def test_each_stage_imports_only_those_before_it(imports: dict[str, set[str]]) -> None:
    layer_of = {stage: i for i, layer in enumerate(LAYERS) for stage in layer}
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in imports.items()
        for target in targets
        if _stage(module) in layer_of
        and _stage(target) in layer_of
        and layer_of[_stage(target)] > layer_of[_stage(module)]
    )
    assert upward == []


def test_the_model_kernel_imports_no_stage(imports: dict[str, set[str]]) -> None:
    kernel = {m: t for m, t in imports.items() if _stage(m) == "modeling"}
    assert kernel, "churn_assets.modeling is missing"
    reached = {_stage(t) for targets in kernel.values() for t in targets}
    assert reached & KERNEL_NEVER_IMPORTS == set()


def test_the_landing_reader_stands_below_resources_and_raw(imports: dict[str, set[str]]) -> None:
    reached = {
        _stage(t) for m, targets in imports.items() if _stage(m) == "landing" for t in targets
    }
    assert reached <= {"landing", "warehouse", "partitions", "keys"}


def _long_functions(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            length = node.end_lineno - first + 1
            reason = first >= 2 and lines[first - 2].strip().startswith(LONG_FUNCTION_REASON)
            if length > MAX_FUNCTION_LINES and not reason:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.name} ({length} lines)")
    return found


def test_functions_read_as_named_steps() -> None:
    long = [f for path in _modules().values() for f in _long_functions(path)]
    assert long == [], f"over {MAX_FUNCTION_LINES} lines with no '{LONG_FUNCTION_REASON}' reason"


def test_no_file_too_big_to_find_ones_way_in() -> None:
    big = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in _modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert big == {}
