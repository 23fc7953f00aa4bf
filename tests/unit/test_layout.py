"""The package's layout holds: imports point downstream only, modules and functions stay small.

The flow is config -> api -> polling -> metrics -> web -> wiring and cli; ``demo`` sits beside
the flow (it may read the config and the API's wire constants) and only the wiring, the cli and
the tests import it. A short AST walk over exporter/ checks every import, lazy ones included.
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
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def layer_of(module: str) -> str:
    """``exporter.polling.poller`` -> ``polling``; ``exporter.cli`` -> ``top``."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in MAY_IMPORT:
        return parts[1]
    return "top"


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


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_imports_only_downstream() -> None:
    wrong = []
    for path in sources():
        wrong += upstream_imports(path.read_text(encoding="utf-8"), module_name(path))
    assert wrong == []


@pytest.mark.parametrize(
    ("module", "line", "complaint"),
    [
        (
            "exporter.polling.poller",
            "from exporter.metrics.registries import ExporterMetrics",
            "polling -> metrics",
        ),
        ("exporter.api.client", "from exporter.polling.slices import TimeSlice", "api -> polling"),
        ("exporter.config.model", "import exporter.api.signing", "config -> api"),
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
