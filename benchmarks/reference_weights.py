"""The reference material's weight maker (../shared/reference/init_weights.py), loaded by path.

One loader for the tests (``tests/reference.py``) and the benchmarks (``bench_precision``): the file is
not a package, and two copies of the loading code had already drifted once.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_init_weights(reference: Path) -> ModuleType:
    """``reference/init_weights.py`` as a module; FileNotFoundError (naming the path) when it is absent."""
    path = Path(reference) / "init_weights.py"
    if not path.is_file():
        raise FileNotFoundError(path)
    spec = importlib.util.spec_from_file_location("reference_init_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
