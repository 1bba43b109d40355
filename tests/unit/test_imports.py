"""The package's import map: the wings of src/dyndnn and the directions they may import in, no
circle (function-level imports included, so none can hide one), sibling imports at module level
except the CLI's per-subcommand ones, which say why, and the on-board code's own rule."""

from __future__ import annotations

import ast
import sys

from helpers import REPO

PACKAGE = REPO / "src/dyndnn"
# The wings (docs/design.md "Layout"). A module's wing is its subpackage; the modules at the top are
# the facts and the config every wing reads ("core"), and the CLI.
WINGS = {
    "core": "facts and config: defaults, arch, config, provenance, logs",
    "learn": "data, networks, training, baselines, evaluation, export",
    "boards": "board files and sessions, profiling, runtime bundles",
    "boards.onboard": "the stand-alone code copied to a board (runner, power, dvfs)",
    "results": "tables, claims, figures, report, records, compare, replay",
    "cli": "the dyndnn command",
}
# Who may import whom, besides its own wing. The on-board code imports nothing of dyndnn but its
# siblings; everything may read it (its flags and field names are facts of the boards).
ALLOWED = {
    "boards.onboard": set(),
    "core": set(),
    "learn": {"core", "boards.onboard"},
    "boards": {"core", "boards.onboard"},
    "results": {"core", "boards.onboard"},
    "cli": {"core", "results"},
}
LAZY_ALLOWED = {
    ("cli", "results.compare"),
    ("cli", "results.compare_view"),
    ("cli", "results.runs"),
    ("cli", "results.replay"),
    ("cli", "results.summary"),
}  # a subcommand's imports only when it runs
# The on-board code runs on a board's own Python (3.6 on JetPack 4) with no torch unless the runtime
# is torch: the standard library, numpy, the board's runtime and its siblings, nothing else.
ONBOARD_THIRD_PARTY = {"numpy", "onnxruntime", "torch", "tensorrt"}


def modules() -> dict[str, object]:
    """dotted name relative to dyndnn (e.g. "learn.train") -> path, for every module."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"}


def wing(module: str) -> str:
    if module.startswith("boards.onboard."):
        return "boards.onboard"
    if "." in module:
        return module.split(".")[0]
    return "cli" if module == "cli" else "core"


def _targets(node, here: str, names: set[str]) -> list[str]:
    """The dyndnn modules an import statement reaches (relative imports resolved from `here`)."""
    found = []
    if isinstance(node, ast.Import):
        found = [a.name[len("dyndnn.") :] for a in node.names if a.name.startswith("dyndnn.")]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = here.split(".")[: -node.level]
            module = ".".join(base + ([node.module] if node.module else []))
        elif node.module and (node.module == "dyndnn" or node.module.startswith("dyndnn.")):
            module = node.module[len("dyndnn.") :] if node.module != "dyndnn" else ""
        else:
            return []
        found = [f"{module}.{a.name}".lstrip(".") for a in node.names]
        found = [t if t in names else module for t in found]
    return [t for t in found if t in names]


def _imports(node, here: str, names: set[str], in_function: bool = False):
    """(module, line, at module level) for every dyndnn import under `node`."""
    yield from ((t, node.lineno, not in_function) for t in _targets(node, here, names))
    inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    for child in ast.iter_child_nodes(node):
        yield from _imports(child, here, names, inside)


def package_imports() -> dict[str, list[tuple[str, int, bool]]]:
    """module -> [(imported module, line, at module level)]."""
    found = modules()
    return {m: list(_imports(ast.parse(p.read_text()), m, set(found))) for m, p in found.items()}


def test_every_module_sits_in_a_wing():
    assert {wing(m) for m in modules()} <= set(WINGS), sorted(m for m in modules() if wing(m) not in WINGS)
    assert not list(PACKAGE.glob("*/*/*/*.py")), "wings are at most two folders deep"


def test_no_import_circle():
    graph = {m: {t for t, _, _ in edges} for m, edges in package_imports().items()}
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


def test_wings_import_only_in_their_allowed_directions():
    wrong = sorted(
        (m, t) for m, edges in package_imports().items() for t, _, _ in edges if wing(t) != wing(m) and wing(t) not in ALLOWED[wing(m)]
    )
    assert not wrong, f"imports against the wing map (ALLOWED): {wrong}"


def test_onboard_code_imports_only_stdlib_numpy_runtime_and_siblings():
    onboard = {m: p for m, p in modules().items() if wing(m) == "boards.onboard"}
    siblings = {m.rsplit(".", 1)[1] for m in onboard}
    for m, path in onboard.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                tops = [] if node.level else [node.module.split(".")[0]]
                if node.level:
                    assert {a.name for a in node.names} <= siblings, f"{m}:{node.lineno} imports outside boards/onboard"
            else:
                continue
            bad = [t for t in tops if t not in sys.stdlib_module_names and t not in ONBOARD_THIRD_PARTY and t not in siblings]
            assert not bad, f"{m}:{node.lineno}: the on-board code may not import {bad}"


def test_sibling_imports_sit_at_module_level():
    lazy = [(m, t, line) for m, edges in package_imports().items() for t, line, top in edges if not top]
    unexplained = [(m, t, line) for m, t, line in lazy if (m, t) not in LAZY_ALLOWED]
    assert not unexplained, f"function-level sibling imports (move them to the top, or say why here): {unexplained}"
    for m, _, line in lazy:
        assert "#" in modules()[m].read_text().splitlines()[line - 1], f"{m}.py:{line}: say why the import is deferred"


def test_modules_are_of_a_readable_size():
    """No module over 400 lines, except the runner, which is copied to boards as one file (its docstring says so)."""
    big = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > 400}
    assert set(big) <= {"boards.onboard.runner"}, f"modules over 400 lines: {big}"
    assert "one file" in (PACKAGE / "boards/onboard/runner.py").read_text().split('"""')[1]


def test_all_lists_what_other_modules_import():
    """A name another module (package, workflow script, benchmark or test) imports from a sibling
    is part of that sibling's interface: it is in its __all__ (leading-underscore names excepted)."""
    found = modules()
    exported = {}
    for m, path in found.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                exported[m] = set(ast.literal_eval(node.value))
    missing = set()
    users = [
        *PACKAGE.rglob("*.py"),
        *(REPO / "workflow/scripts").glob("*.py"),
        *(REPO / "benchmarks").glob("*.py"),
        *(REPO / "tests").rglob("*.py"),
    ]
    for path in users:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dyndnn."):
                m = node.module[len("dyndnn.") :]
                if m in found and path != found[m]:
                    missing |= {(m, a.name) for a in node.names if not a.name.startswith("_") and a.name not in exported.get(m, set())}
    assert not missing, f"imported but not in the module's __all__: {sorted(missing)}"
