"""Data flows one way (docs/design.md, "Layers"): no module imports from a higher layer than its own.

The layers are listed once, in pyproject.toml's [tool.genfields] table. Lazy imports inside functions
count (a lazy import is still a dependency); imports under `if TYPE_CHECKING:` do not.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")


def project_layers() -> list[list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["genfields"]["layers"]


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    for i, prefixes in enumerate(layers):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, here: str, is_package: bool):
    """(line, absolute module name) of every import outside `if TYPE_CHECKING:` blocks."""
    type_checking = {id(n) for node in ast.walk(tree)
                     if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                     for stmt in node.body for n in ast.walk(stmt)}
    package = here if is_package else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[:len(parts) - node.level + 1]
                yield node.lineno, ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.lineno, node.module or ""


def upward_imports(package_dir: Path, layers: list[list[str]]) -> list[str]:
    """'path:line: module (layer i) imports other (layer j)' for every import that runs upward."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        here = module_name(path, package_dir)
        mine = layer_of(here, layers)
        if mine is None:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for line, module in imported_modules(tree, here, path.name == "__init__.py"):
            theirs = layer_of(module, layers)
            if theirs is not None and theirs > mine and module != package_dir.name:
                found.append(f"{path.relative_to(package_dir.parent)}:{line}: {here} (layer {mine}) "
                             f"imports {module} (layer {theirs})")
    return found


def test_no_module_imports_from_a_higher_layer():
    upward = upward_imports(ROOT / "genfields", project_layers())
    assert not upward, "imports that run upward against the layering of docs/design.md:\n" + "\n".join(upward)


def test_the_check_finds_an_upward_import_in_any_form(tmp_path):
    pkg = tmp_path / "genfields"
    (pkg / "evaluation").mkdir(parents=True)
    (pkg / "perception").mkdir()
    for init in (pkg / "__init__.py", pkg / "evaluation" / "__init__.py", pkg / "perception" / "__init__.py"):
        init.write_text("")
    (pkg / "evaluation" / "claims.py").write_text("from genfields.fields import x\n")  # downward: fine
    (pkg / "fields.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from genfields.editing import Editor\n"  # type-only: fine
        "from genfields.evaluation import claims\n")  # upward, absolute
    (pkg / "perception" / "net.py").write_text(
        "def f():\n    from ..evaluation.claims import judge\n"  # upward, relative and lazy
        "from . import other\n")  # same layer: fine
    upward = upward_imports(pkg, project_layers())
    assert upward == [
        "genfields/fields.py:4: genfields.fields (layer 1) imports genfields.evaluation (layer 6)",
        "genfields/perception/net.py:2: genfields.perception.net (layer 4) imports genfields.evaluation.claims (layer 6)",
    ]


def test_the_layers_agree_with_the_shared_check_where_it_exists():
    shared = ROOT.parent / "shared" / "tools" / "check_layers.py"
    if not shared.exists():
        pytest.skip("../shared/tools/check_layers.py is absent (the project's own check above still runs)")
    spec = importlib.util.spec_from_file_location("shared_check_layers", shared)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.LAYERS == project_layers()


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (module- and function-level, outside
    `if TYPE_CHECKING:`). `from a import b` imports module a.b when there is one, else a."""
    paths = {module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for here, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        names = {id(node): [a.name for a in node.names] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        edges = set()
        for line, module in imported_modules(tree, here, path.name == "__init__.py"):
            nodes = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.lineno == line]
            members = [f"{module}.{name}" for n in nodes for name in names[id(n)] if f"{module}.{name}" in paths]
            edges.update(members or ([module] if module in paths else []))
        graph[here] = edges - {here}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_import_graph_has_no_cycle():
    cycles = import_cycles(import_graph(ROOT / "genfields"))
    assert not cycles, "import cycles (module- or function-level):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_planted_cycle_through_a_lazy_import(tmp_path):
    pkg = tmp_path / "genfields"
    (pkg / "stylegan2").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "stylegan2" / "__init__.py").write_text("")
    (pkg / "fields.py").write_text("def f():\n    from genfields.stylegan2 import linear\n")
    (pkg / "stylegan2" / "linear.py").write_text("from ..fields import Band\n")
    (pkg / "stylegan2" / "layout.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from genfields.fields import x\n")  # type-only
    assert import_cycles(import_graph(pkg)) == [["genfields.fields", "genfields.stylegan2.linear"]]
