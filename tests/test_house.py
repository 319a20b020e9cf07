"""The house rules of lib/ (issue 13), held by reading the source: no import cycle between the project's
modules (imports inside functions count: hiding one there does not remove the cycle), no module past 600
lines, and no Delta write outside ``delta_io``.

Each rule's checker is first shown to catch a breach built inline, so that a rule that passes on the tree
is a rule that could have failed.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
MAX_MODULE_LINES = 600
DELTA_DOOR = "promo_roi.delta_io"
# A DataFrame's writer (`df.write.<method>`), the v2 writer, and the two Delta libraries' write APIs.
WRITER_METHODS = {"format", "mode", "save", "saveAsTable", "insertInto", "partitionBy", "option", "options",
                  "parquet", "json", "csv", "orc", "text"}
DELTA_WRITE_NAMES = {"writeTo", "write_deltalake", "forPath", "forName", "convertToDelta", "createIfNotExists",
                     "createOrReplace"}


def _modules(root: Path) -> dict[str, Path]:
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an import of ``name`` loads (``a.b.C`` -> ``a.b``), or None for a library."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (relative imports resolved)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                # `from pkg import sub` imports the submodule; `from mod import name` the module.
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = _resolve(name, modules)
                if target and target != module:
                    imported.add(target)
        graph[module] = imported
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def delta_writes(path: Path) -> list[str]:
    """'line: code' of each DataFrame or Delta write in the file, in line order."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and any(alias.name in DELTA_WRITE_NAMES for alias in node.names):
            found.append((node.lineno, f"from {node.module} import ..."))
        if not isinstance(node, ast.Attribute):
            continue
        writer_chain = (node.attr in WRITER_METHODS and isinstance(node.value, ast.Attribute)
                        and node.value.attr == "write")
        if writer_chain or node.attr in DELTA_WRITE_NAMES:
            found.append((node.lineno, ast.unparse(node)))
    return [f"{line}: {code}" for line, code in sorted(found)]


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return _modules(tmp_path)


def test_the_cycle_finder_sees_a_cycle_hidden_inside_a_function(tmp_path):
    modules = _tree(tmp_path, {
        "shop/__init__.py": "",
        "shop/scoring.py": "from shop import reporting\n",
        "shop/reporting.py": "def render():\n    from shop.scoring import score\n",
        "shop/tables/__init__.py": "from shop.tables.gold import PLAN\n",
        "shop/tables/gold.py": "from shop.tables.spec import Spec\nPLAN = 1\n",
        "shop/tables/spec.py": "import json\nfrom . import gold as _\n",
        "shop/clean.py": "import shop.tables\nfrom .tables import spec\n",
    })
    graph = import_graph(modules)
    assert graph["shop.clean"] == {"shop.tables", "shop.tables.spec"}
    assert graph["shop.tables.spec"] == {"shop.tables.gold"}
    assert import_cycles(graph) == [["shop.reporting", "shop.scoring"], ["shop.tables.gold", "shop.tables.spec"]]


def test_the_write_finder_sees_writer_chains_and_delta_apis(tmp_path):
    path = tmp_path / "job.py"
    path.write_text(
        "from deltalake import write_deltalake\n"
        "def publish(df, spark, fh):\n"
        "    fh.write('x')\n"
        "    df.write.format('delta').mode('append').save('/w/t')\n"
        "    DeltaTable.forPath(spark, '/w/t').delete('x')\n"
        "    df.writeTo('gold.t').append()\n"
        "    spark.read.format('delta').load('/w/t')\n"
    )
    assert delta_writes(path) == [
        "1: from deltalake import ...", "4: df.write.format", "5: DeltaTable.forPath", "6: df.writeTo",
    ]


def test_no_import_cycle_in_lib():
    assert import_cycles(import_graph(_modules(LIB))) == []


def test_no_module_in_lib_is_past_600_lines():
    long = {name: n for name, path in _modules(LIB).items()
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_delta_is_written_only_through_delta_io():
    modules = _modules(LIB)
    assert DELTA_DOOR in modules and delta_writes(modules[DELTA_DOOR])
    elsewhere = {name: found for name, path in modules.items()
                 if name != DELTA_DOOR and (found := delta_writes(path))}
    assert elsewhere == {}
