"""The package's layout holds: imports point downstream only, modules and functions stay small.

The flow is config -> api -> polling -> metrics -> web -> wiring and cli; ``demo`` sits beside
the flow (it may read the config and the API's wire constants) and only the wiring, the cli and
the tests import it. Inside ``api`` the steps are wire -> auth -> transport, inside ``polling``
read and derive -> publish -> schedule, each a sub-package; modules directly under ``api`` are
shared by its steps. No module takes part in an import circle. A short AST walk over exporter/
checks every import, lazy ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.tools import ROOT

PACKAGE = ROOT / "exporter"
# What each layer may import from the exporter (besides itself and the package root's
# ``__version__``). Modules directly under exporter/ (cli, wiring, reload, logs) are the top.
MAY_IMPORT = {
    "config": set(),
    "api": {"config"},
    "polling": {"config", "api"},
    "metrics": {"config", "api", "polling"},
    "web": {"config", "api", "polling", "metrics"},
    "demo": {"config", "api"},
}
TOP = {"config", "api", "polling", "metrics", "web", "demo", "top"}
# Inside a layer: what each step (sub-package) may import besides itself and the layer's own
# top-level modules (``None``: the layer's root modules, such as ``exporter.api.errors``).
STEP_MAY_IMPORT = {
    "api": {"wire": set(), "auth": {"wire"}, "transport": {"wire", "auth"}},
    "polling": {
        "read": set(),
        "derive": set(),
        "publish": {"derive"},
        "schedule": {"read", "derive", "publish"},
    },
}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def layer_of(module: str) -> str:
    """``exporter.polling.schedule.poller`` -> ``polling``; ``exporter.cli`` -> ``top``."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in MAY_IMPORT:
        return parts[1]
    return "top"


def step_of(module: str) -> str | None:
    """``exporter.polling.read.slices`` -> ``read``; ``exporter.api.errors`` -> None."""
    parts = module.split(".")
    steps = STEP_MAY_IMPORT.get(layer_of(module), {})
    return parts[2] if len(parts) >= 4 and parts[2] in steps else None


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every ``import exporter...`` and ``from exporter... import``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "exporter"]


def upstream_imports(source: str, module: str) -> list[str]:
    """The imports in ``source`` (the text of ``module``) that point against the flow."""
    layer = layer_of(module)
    allowed = TOP if layer == "top" else {layer, *MAY_IMPORT[layer]}
    wrong = []
    for line, imported in imported_modules(ast.parse(source)):
        if imported == "exporter":
            continue  # the package root holds only __version__
        if layer_of(imported) not in allowed:
            wrong.append(f"{module}:{line} imports {imported} ({layer} -> {layer_of(imported)})")
    return wrong


def upstream_steps(source: str, module: str) -> list[str]:
    """The imports in ``source`` that point against the flow of steps inside one layer."""
    layer, step = layer_of(module), step_of(module)
    steps = STEP_MAY_IMPORT.get(layer, {})
    wrong = []
    for line, imported in imported_modules(ast.parse(source)):
        target = step_of(imported)
        if layer_of(imported) != layer or target is None or target == step:
            continue
        if step is None or target not in steps[step]:
            wrong.append(f"{module}:{line} imports {imported} ({step} -> {target})")
    return wrong


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_imports_only_downstream() -> None:
    wrong = []
    for path in sources():
        wrong += upstream_imports(path.read_text(encoding="utf-8"), module_name(path))
    assert wrong == []


def test_every_step_imports_only_downstream_inside_its_layer() -> None:
    wrong = []
    for path in sources():
        wrong += upstream_steps(path.read_text(encoding="utf-8"), module_name(path))
    assert wrong == []


@pytest.mark.parametrize(
    ("module", "line", "complaint"),
    [
        (
            "exporter.polling.read.window_read",
            "from exporter.polling.publish.snapshot import Snapshot",
            "read -> publish",
        ),
        (
            "exporter.api.wire.pages",
            "from exporter.api.transport.client import RawAnswer",
            "wire -> transport",
        ),
        (
            "exporter.api.errors",
            "from exporter.api.auth.signing import sign_request",
            "None -> auth",
        ),
    ],
)
def test_a_step_importing_against_the_flow_is_caught(
    module: str, line: str, complaint: str
) -> None:
    (found,) = upstream_steps(line + "\n", module)
    assert found.endswith(f"({complaint})")


def test_no_module_takes_part_in_an_import_circle() -> None:
    graph = {
        module_name(path): {
            imported
            for _, imported in imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        }
        for path in sources()
    }
    circles = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                circles.append(" -> ".join([*trail[trail.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


@pytest.mark.parametrize(
    ("module", "line", "complaint"),
    [
        (
            "exporter.polling.schedule.poller",
            "from exporter.metrics.registries import ExporterMetrics",
            "polling -> metrics",
        ),
        (
            "exporter.api.transport.client",
            "from exporter.polling.read.slices import TimeSlice",
            "api -> polling",
        ),
        ("exporter.config.model", "import exporter.api.auth.signing", "config -> api"),
        ("exporter.demo.simulator", "from exporter.web.server import landing_page", "demo -> web"),
        (
            "exporter.metrics.collectors",
            "def lazy():\n    from exporter.demo.simulator import ApiSimulator",
            "metrics -> demo",
        ),
    ],
)
def test_an_import_against_the_flow_is_caught(module: str, line: str, complaint: str) -> None:
    (found,) = upstream_imports(line + "\n", module)
    assert found.endswith(f"({complaint})")


def test_demo_is_imported_only_by_the_top() -> None:
    importers = {
        module_name(path)
        for path in sources()
        for _, imported in imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        if layer_of(imported) == "demo" and layer_of(module_name(path)) not in ("demo", "top")
    }
    assert importers == set()


def test_the_simulator_is_not_loaded_by_a_plain_start() -> None:
    """Only --demo imports exporter.demo: the modules a normal start loads do not."""
    loaded = {"exporter.cli"}
    queue = ["exporter.cli"]
    while queue:
        module = queue.pop()
        path = ROOT / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / module.replace(".", "/") / "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
        for _, imported in imported_modules(ast.Module(body=top_level, type_ignores=[])):
            if imported not in loaded and imported != "exporter":
                loaded.add(imported)
                queue.append(imported)
    assert not {module for module in loaded if layer_of(module) == "demo"}


def test_no_module_is_longer_than_300_lines() -> None:
    long = {
        module_name(path): lines
        for path in sources()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_longer_than_50_lines() -> None:
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{module_name(path)}.{node.name}"] = lines
    assert long == {}


def test_every_class_says_its_one_reason_in_its_docstring() -> None:
    silent = [
        f"{module_name(path)}.{node.name}"
        for path in sources()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and not ast.get_docstring(node)
    ]
    assert silent == []
