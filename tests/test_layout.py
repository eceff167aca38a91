"""The shape of the code: no import cycles, shared layers import no domain, old paths alias new ones."""

import ast
import importlib
import sys
from pathlib import Path

import pytest

from latentsci.moved import MOVED, new_name

from conftest import ROOT

SHARED = ("latentsci.latent", "latentsci.store", "latentsci.pipeline", "latentsci.runtime",
          "latentsci.tracking", "latentsci.inference", "latentsci.plots", "latentsci.errors",
          "latentsci.model_files", "latentsci.jobs")
DOMAINS = ("latentsci.molecules", "latentsci.fields")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    """Import edges between latentsci's own modules (names that are modules, not attributes)."""
    files = {_module_name(p): p for p in (ROOT / "latentsci").rglob("*.py")}
    return {name: {m for m in _imports(path) if m in files and m != name}
            for name, path in files.items()}


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert cycles == []


def test_shared_layers_import_no_domain_and_domains_not_each_other():
    graph = _graph()
    bad = [(a, b) for a, deps in graph.items() for b in deps
           if (a.startswith(SHARED) and b.startswith(DOMAINS))
           or (a.startswith(DOMAINS[0]) and b.startswith(DOMAINS[1]))
           or (a.startswith(DOMAINS[1]) and b.startswith(DOMAINS[0]))]
    assert bad == []


def test_project_code_imports_new_paths_only():
    files = [p for top in ("latentsci", "workflows", "bench", "tests") for p in
             (ROOT / top).rglob("*.py") if p.name != "test_layout.py"]
    old = [(p.relative_to(ROOT).as_posix(), m) for p in files for m in _imports(p)
           if new_name(m) is not None]
    assert old == []


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_paths_are_the_new_modules(old):
    assert not MOVED[old].startswith(old + ".")  # an alias into itself would recurse
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])
    assert sys.modules[MOVED[old]].__spec__.name == MOVED[old]


def test_readme_imports_keep_working():
    from latentsci.fields.sources import open_fields
    from latentsci.metrics import moses_metrics
    from latentsci.models import MoleculeVAE
    from latentsci.models.aggregate import LatentGaussian
    from latentsci.store import LatentStore

    assert MoleculeVAE.__module__ == "latentsci.molecules.vae.model"
    assert LatentGaussian.__module__ == "latentsci.latent.gaussian"
    assert moses_metrics.__module__ == "latentsci.molecules.metrics.moses"
    assert open_fields.__module__ == "latentsci.fields.data.sources"
    assert LatentStore.__module__.startswith("latentsci.store")
