"""Where the tests find things: the repository and the ../shared material (reference code, fixtures, photos)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_SHARED", REPO.parent / "shared"))
REFERENCE = Path(os.environ.get("INPAINT_REFERENCE", SHARED / "reference"))
FIXTURES = Path(os.environ.get("INPAINT_REFERENCE_FIXTURES", REFERENCE / "fixtures"))
EVALSET = Path(os.environ.get("INPAINT_EVALSET", SHARED / "evalset"))
