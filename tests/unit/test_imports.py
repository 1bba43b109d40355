"""The package's import graph: no circle (function-level imports included, so none can hide
one), and sibling imports at module level, except the CLI's per-subcommand ones, which say why."""

from __future__ import annotations

import ast

from helpers import REPO

PACKAGE = REPO / "src/dyndnn"
# Who may import whom: a module imports only modules of lower layers (facts and utilities at the
# bottom, the networks and configs above them, then what trains, measures and reports, the CLI on top).
LAYERS = [
    {"defaults", "logs", "provenance", "dvfs", "power", "figures", "manager"},
    {"arch", "runner", "analysis", "bundle"},
    {"config", "model", "data", "simulate", "record"},
    {"technique", "anytime", "boards", "compare", "plots"},
    {"train", "export", "profiling", "aggregate", "report"},
    {"baselines", "evaluate", "replay"},
    {"cli"},
]
LAZY_ALLOWED = {("cli", "compare"), ("cli", "replay")}  # a subcommand's imports only when it runs


def _imports(node, names: set[str], in_function: bool = False):
    """(sibling, line, at module level) for every dyndnn import under `node`."""
    targets = []
    if isinstance(node, ast.Import):
        targets = [a.name.split(".")[1] for a in node.names if a.name.startswith("dyndnn.")]
    elif isinstance(node, ast.ImportFrom):
        if node.module == "dyndnn" or (node.level == 1 and node.module is None):
            targets = [a.name for a in node.names]
        elif node.module and node.module.startswith("dyndnn."):
            targets = [node.module.split(".")[1]]
    yield from ((t, node.lineno, not in_function) for t in targets if t in names)
    inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    for child in ast.iter_child_nodes(node):
        yield from _imports(child, names, inside)


def sibling_imports() -> dict[str, list[tuple[str, int, bool]]]:
    """module -> [(imported sibling, line, at module level)]."""
    names = {p.stem for p in PACKAGE.glob("*.py")}
    return {path.stem: list(_imports(ast.parse(path.read_text()), names)) for path in sorted(PACKAGE.glob("*.py"))}


def test_no_import_circle():
    graph = {m: {t for t, _, _ in edges} for m, edges in sibling_imports().items()}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            assert state.get(t) != "open", f"import circle: {' -> '.join(stack[stack.index(t) :] + [t])}"
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_every_module_imports_only_lower_layers():
    layer = {m: i for i, names in enumerate(LAYERS) for m in names}
    graph = sibling_imports()
    assert set(graph) - {"__init__"} == set(layer), f"place every module in LAYERS: {sorted(set(graph) - {'__init__'} ^ set(layer))}"
    upward = sorted((m, t) for m, edges in graph.items() for t, _, _ in edges if m in layer and layer[t] >= layer[m])
    assert not upward, f"imports of a module at the same or a higher layer: {upward}"


def test_sibling_imports_sit_at_module_level():
    lazy = [(m, t, line) for m, edges in sibling_imports().items() for t, line, top in edges if not top]
    unexplained = [(m, t, line) for m, t, line in lazy if (m, t) not in LAZY_ALLOWED]
    assert not unexplained, f"function-level sibling imports (move them to the top, or say why here): {unexplained}"
    for m, _, line in lazy:
        assert "#" in (PACKAGE / f"{m}.py").read_text().splitlines()[line - 1], f"{m}.py:{line}: say why the import is deferred"


def test_all_lists_what_other_modules_import():
    """A name another module (package, workflow script, benchmark or test) imports from a sibling
    is part of that sibling's interface: it is in its __all__ (leading-underscore names excepted)."""
    names = {p.stem for p in PACKAGE.glob("*.py")}
    exported = {}
    for m in names:
        tree = ast.parse((PACKAGE / f"{m}.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                exported[m] = set(ast.literal_eval(node.value))
    missing = set()
    users = [
        *PACKAGE.glob("*.py"),
        *(REPO / "workflow/scripts").glob("*.py"),
        *(REPO / "benchmarks").glob("*.py"),
        *(REPO / "tests").rglob("*.py"),
    ]
    for path in users:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dyndnn."):
                m = node.module.split(".")[1]
                if m in names and (path.parent != PACKAGE or path.stem != m):
                    missing |= {(m, a.name) for a in node.names if not a.name.startswith("_") and a.name not in exported.get(m, set())}
    assert not missing, f"imported but not in the module's __all__: {sorted(missing)}"
