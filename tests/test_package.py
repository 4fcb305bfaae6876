"""The helpers package: the lessons' modules flat, plumbing in two subpackages (`data`, `explorer`); every
package's docstring lists its modules in one line each; every module says its concern and stays short."""
import ast
import re
from pathlib import Path

import helpers

HELPERS = Path(helpers.__file__).resolve().parent
SUBPACKAGES = ("data", "explorer")
MAX_LINES = 320


def _listed(doc: str) -> list[str]:
    return re.findall(r"^- `(\w+)/?`(?: \(subpackage\))?: \S", doc, flags=re.M)


def test_every_module_is_listed_once_in_its_package_docstring():
    dirs = sorted(p.name for p in HELPERS.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert dirs == sorted(SUBPACKAGES), f"subpackages: {dirs}; the lessons' modules stay flat"
    for folder, extra in [(HELPERS, list(SUBPACKAGES))] + [(HELPERS / s, []) for s in SUBPACKAGES]:
        modules = sorted([p.stem for p in folder.glob("*.py") if p.stem != "__init__"] + extra)
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        listed = _listed(doc)
        assert sorted(listed) == modules, (f"{folder.name}: not listed: {set(modules) - set(listed)}; listed but "
                                           f"missing: {set(listed) - set(modules)}")


def test_every_module_says_its_concern_in_its_docstring_and_stays_short():
    for path in sorted(HELPERS.rglob("*.py")):
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text))
        assert doc and len(doc.splitlines()[0]) > 20, f"{path.name} has no docstring saying its concern"
        assert len(text.splitlines()) <= MAX_LINES, f"{path.relative_to(HELPERS)} has over {MAX_LINES} lines: split it by concern"


def _import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """helpers' modules -> the helpers modules they import at run time (imports under `if TYPE_CHECKING:`
    left out), and every `from .x import _private` across modules."""
    mods = {}
    for p in HELPERS.rglob("*.py"):
        name = ".".join(p.relative_to(HELPERS.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for m, p in mods.items():
        tree = ast.parse(p.read_text())
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0 and id(node) not in type_only:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    t = full if full in mods else target
                    if t in mods and t != m:
                        graph[m].add(t)
                    if alias.name.startswith("_"):
                        private.append(f"{m} imports {alias.name} from {t}")
    return graph, private


def test_no_import_cycles_and_no_private_imports_across_modules():
    graph, private = _import_graph()
    assert not private, private
    # the package's __init__ imports its modules for the students' `helpers.load_model`, ...; leave it out
    edges = {m: {t for t in ts if t != "helpers"} for m, ts in graph.items() if m != "helpers"}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                cycle.extend(path[path.index(t):] + [t])
                return True
            if t not in state and visit(t, path + [t]):
                return True
        state[m] = 2
        return False

    assert not any(visit(m, [m]) for m in sorted(edges) if m not in state), " -> ".join(cycle)
