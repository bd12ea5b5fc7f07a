"""The machine, the versions and the code that produced a result, written next to every number.

Timings mean nothing without the CPU/GPU they ran on, and quality numbers can move with an
OpenCV or PyPatchMatch release, so each result file carries this record.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "numpy", "opencv-python-headless", "pypatchmatch", "scikit-image", "pillow", "matplotlib")
REPO = Path(__file__).resolve().parents[1]


def describe(device: str = "cpu") -> dict[str, object]:
    """Machine, versions, code revision and time of a run (JSON-ready); call it when the run starts.

    The 1-minute load average says whether other work shared the CPU while timings were taken.
    """
    import torch

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gib": round(ram_bytes() / 2**30, 1),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CUDA not available)",
        "device": device,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: version(name) for name in PACKAGES},
        "code": revision(),
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def revision() -> str:
    """Short commit of the checkout, with "+ local changes" when the tree is not clean."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + local changes" if dirty else "")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def summary_line(info: dict) -> str:
    """One Markdown line: the machine and the versions."""
    v = info["versions"]
    return (f"{info['cpu']} ({info['cpu_count']} cores, {info['ram_gib']} GiB RAM), GPU: {info['gpu']}; "
            f"device `{info['device']}`; {info['os']}; Python {info['python']}, torch {v['torch']}, "
            f"numpy {v['numpy']}, OpenCV {v['opencv-python-headless']}, PyPatchMatch {v['pypatchmatch']}, "
            f"scikit-image {v['scikit-image']}; code {info['code']}; {info['date']}"
            + (f"; load average at start {info['load_average']}" if info.get("load_average") is not None else ""))
