"""The house's floors (docs/architecture.md): which way imports go, checked on the source itself.

``app.specs`` is the ground floor (imports nothing of the app); the networks (``app.models``) and the
weights machinery (``app.weights``) build on it and on ``app.errors``, never on the pipeline, the model
cache or the front ends above them; ``import app.registry`` stays light (no torch, no network module).
Only module-level imports count (a spec resolves its network class when first asked).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"
#: What each floor may import from the app, besides itself.
ALLOWED = {
    "app.specs": set(),
    "app.errors": set(),
    "app.models": {"app.specs", "app.errors"},
    "app.inpainters": {"app.specs", "app.errors", "app.models"},
    "app.weights": {"app.specs", "app.errors", "app.registry", "app.devices"},
    "app.registry": {"app.specs", "app.errors"},
}


def floor(module: str) -> str:
    for name in ALLOWED:
        if module == name or module.startswith(name + "."):
            return name
    return module


def module_level_imports(path: Path) -> set[str]:
    """``app.*`` modules ``path`` imports at module level (TYPE_CHECKING blocks excluded)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "app":
            found.add(node.module if node.module != "app" else f"app.{node.names[0].name}")
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "app"}
    return found


def test_each_floor_imports_only_the_floors_below_it():
    wrong = []
    for path in sorted(APP.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        here = floor(module)
        if here not in ALLOWED:
            continue
        for target in module_level_imports(path):
            if floor(target) != here and floor(target) not in ALLOWED[here]:
                wrong.append(f"{path.relative_to(REPO)} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_nothing_below_the_web_front_end_imports_it():
    """``app.web`` sits on top: the pipeline, the selection, the weights and the CLI work without Gradio's page."""
    wrong = []
    for path in sorted(APP.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        if module.startswith("app.web"):
            continue
        above = [target for target in module_level_imports(path) if target.startswith("app.web")]
        wrong += [f"{path.relative_to(REPO)} imports {target}" for target in above]
    assert not wrong, "\n".join(wrong)


def test_importing_the_registry_or_the_specs_loads_no_network_and_no_torch():
    code = ("import sys, app.registry, app.specs; "
            "print(sorted(m for m in sys.modules if m.startswith('app.models') or m == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_catalogue_reads_each_networks_sizes_from_its_class_on_first_use():
    from app import registry
    from app.specs import import_entry

    for spec in registry.NEURAL:
        facts = import_entry(spec.entry).FACTS
        assert (spec.native_size, spec.max_size, spec.size_multiple) == (facts.native_size, facts.max_size,
                                                                         facts.size_multiple), spec.id
