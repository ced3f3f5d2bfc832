"""The package's layers point only down, nothing imports in a cycle, strategies import no CLI module, and
docs/architecture.md's tree names exactly the package's modules.

The graph is read from the source (AST), imports inside functions included: a lazy import is still a
dependency. Imports under `if TYPE_CHECKING:` are annotations only and are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "labelmill"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

# bottom first; a module may import its own layer or any layer below it
LAYERS: list[tuple[str, ...]] = [
    ("labelmill.numeric", "labelmill.types", "labelmill.errors", "labelmill.events"),
    ("labelmill.store", "labelmill.registry"),
    ("labelmill.config", "labelmill.autolabel", "labelmill.guideline", "labelmill.template"),
    ("labelmill.backends", "labelmill.io", "labelmill.models"),
    ("labelmill.selectors",),
    ("labelmill.tasks",),
    ("labelmill.core", "labelmill.execute"),
    ("labelmill.evaluation", "labelmill.exports"),
    ("labelmill.api", "labelmill"),  # the package itself is the facade
    ("labelmill.strategies",),
    ("labelmill.cli", "labelmill.doctor", "labelmill.selfcheck", "labelmill.testing", "labelmill.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _resolve(name: str) -> str | None:
    """The longest known module that `name` (a module or a name inside one) lies in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str) -> list[tuple[str, int]]:
    """(imported labelmill module, line) for each import in `module`, type-checking blocks left out."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if node.__class__ not in (ast.Import, ast.ImportFrom) or node.lineno in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
            names = [n if _resolve(n) != "labelmill" or base == "labelmill" else base for n in names]
        for name in names:
            target = _resolve(name) if name.startswith("labelmill") else None
            if target and target != module:
                found.append((target, node.lineno))
    return found


def layer(module: str) -> int:
    best = -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + ".") and prefix != "labelmill":
                best = max(best, index)
    return best


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer(m) < 0] == []


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{m}:{line} -> {t}" for m, edges in GRAPH.items() for t, line in edges if layer(t) > layer(m)]
    assert upward == []


def test_strategies_import_no_cli_module():
    found = [f"{m}:{line} -> {t}" for m, edges in GRAPH.items() if m.startswith("labelmill.strategies")
             for t, line in edges if t.startswith("labelmill.cli")]
    assert found == []


def test_strategies_label_through_the_core_not_the_facade():
    found = [f"{m}:{line} -> {t}" for m, edges in GRAPH.items() if m.startswith("labelmill.strategies")
             for t, line in edges if t in ("labelmill", "labelmill.api")]
    assert found == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _package_of(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def test_no_import_cycle():
    # a package's __init__ re-exporting its own modules is not a cycle of design: edges into a package's
    # own __init__ from inside it are left out
    graph = {m: {t for t, _ in edges if not (_package_of(t) and m.startswith(t + "."))} for m, edges in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    assert layer("labelmill.config") < layer("labelmill.tasks.base")
    assert layer("labelmill.strategies.review.app") < layer("labelmill.cli.app")
    assert layer("labelmill") == layer("labelmill.api")


def _documented_modules() -> set[str]:
    """Module paths in the fenced tree of docs/architecture.md (lines like `  tasks/ner.py  ...`)."""
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("```text", 1)[1].split("```", 1)[0]
    found: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines():
        match = re.match(r"^(\s*)([\w.]+/|\w+\.py)(?=\s|$)", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        name = match.group(2)
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name[:-1])
        else:
            found.add("/".join([*folders, name]))
    return found


def test_the_architecture_doc_names_every_module_and_no_other():
    actual = {str(p.relative_to(SRC)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    documented = _documented_modules()
    assert sorted(actual - documented) == [], "modules missing from docs/architecture.md"
    assert sorted(documented - actual) == [], "docs/architecture.md names modules that do not exist"


def _functions_named(fragment: str) -> list[str]:
    return [f"{m}:{node.lineno}" for m, p in MODULES.items() for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and fragment in node.name.lower()]


def test_softmax_is_scipy_s_alone():
    """No function of ours is a softmax, and no expression normalises exp(x - max x) by hand."""
    assert _functions_named("softmax") == []
    by_hand = re.compile(r"exp\(\s*([\w.]+)\s*-\s*\1\.max\(")
    found = [f"{m}: {line.strip()}" for m, p in MODULES.items() for line in p.read_text(encoding="utf-8").splitlines() if by_hand.search(line)]
    assert found == []


def test_one_cohen_kappa():
    assert [where.split(":")[0] for where in _functions_named("cohen_kappa")] == ["labelmill.numeric.agreement"]


STRATEGY_PACKAGES = sorted(p.parent.name for p in (PACKAGE / "strategies").glob("*/__init__.py"))


@pytest.mark.parametrize("name", STRATEGY_PACKAGES)
def test_every_strategy_package_publishes_its_api(name):
    """`strategies/<name>/__init__.py` has an `__all__`, and every name in it resolves."""
    import importlib

    package = importlib.import_module(f"labelmill.strategies.{name}")
    assert getattr(package, "__all__", None), f"labelmill.strategies.{name} has no __all__"
    missing = [n for n in package.__all__ if not hasattr(package, n)]
    assert missing == []


# Functions over the limits (lines, parameters). The list may only shrink: a function not in it must keep
# within 60 lines and 8 parameters, and one in it must not grow. Click commands (their option lists) are left
# out. The list is empty: the last two went with the old `--cascade` (now a preset of the tiered cascade).
MAX_LINES, MAX_PARAMS = 60, 8
OVER_TODAY: dict[tuple[str, str], tuple[int, int]] = {}


def _function_sizes() -> dict[tuple[str, str], tuple[int, int]]:
    sizes = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any(word in d for d in decorators for word in ("option", "argument", "command")):
                continue
            a = node.args
            params = len([x for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]) + bool(a.vararg) + bool(a.kwarg)
            key = (str(path.relative_to(SRC)), node.name)
            lines = node.end_lineno - node.lineno + 1
            old = sizes.get(key, (0, 0))
            sizes[key] = (max(old[0], lines), max(old[1], params))
    return sizes


def test_no_function_grows_past_the_size_limits():
    grown = []
    for key, (lines, params) in _function_sizes().items():
        allowed = OVER_TODAY.get(key, (MAX_LINES, MAX_PARAMS))
        if lines > max(allowed[0], MAX_LINES) or params > max(allowed[1], MAX_PARAMS):
            grown.append(f"{key[0]}:{key[1]} {lines} lines, {params} parameters (allowed {allowed})")
    assert grown == []


def test_the_size_list_names_only_functions_still_over():
    """A function split below the limits leaves the list, so the list tells what is left to do."""
    sizes = _function_sizes()
    stale = [key for key in OVER_TODAY if key not in sizes or (sizes[key][0] <= MAX_LINES and sizes[key][1] <= MAX_PARAMS)]
    assert stale == []


def test_one_cascade():
    """Issue 33: the tiered cascade is the only one; `--cascade` is its preset (`llm_cascade`), no module of its own."""
    assert sorted(p.name for p in (PACKAGE / "strategies" / "cascade").glob("*.py")) == ["__init__.py", "run.py", "strategy.py"]
    orchestrators = [str(p.relative_to(SRC)) for p in PACKAGE.rglob("*.py") if re.search(r"^def (cascade|tiered_cascade|llm_cascade)\(", p.read_text(), re.M)]
    assert orchestrators == ["labelmill/strategies/cascade/run.py"]
