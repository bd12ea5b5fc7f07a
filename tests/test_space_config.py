"""The Space's own configuration: what ZeroGPU accepts and what the first visit needs."""

from __future__ import annotations

import re

import yaml

from app import registry
from tests.paths import REPO

#: ZeroGPU's supported releases (Hub documentation, "spaces-zerogpu", 2026).
ZEROGPU_TORCH = {"2.8.0", "2.9.1", "2.10.0", "2.11.0"}
ZEROGPU_PYTHON = {"3.10.13", "3.12.12"}


def front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---", 2)[1])


def pins() -> dict[str, str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return dict(re.match(r"^([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?==(\S+)", line).groups() for line in lines if "==" in line)


def test_zerogpu_accepts_the_python_and_torch_it_is_given():
    assert front_matter()["python_version"] in ZEROGPU_PYTHON
    assert pins()["torch"] in ZEROGPU_TORCH
    assert pins()["torchvision"].split(".")[1] == str(int(pins()["torch"].split(".")[1]) + 15)  # the paired release
    assert "spaces" in pins()
    assert front_matter()["sdk_version"] == pins()["gradio"]


def test_the_build_preloads_every_official_archive_the_app_converts_itself():
    preloaded = {tuple(entry.split()[:2]) for entry in front_matter()["preload_from_hub"]}
    wanted = {(s.official_archive.repo, s.official_archive.file) for s in registry.NEURAL if s.official_archive}
    assert wanted and wanted <= preloaded
