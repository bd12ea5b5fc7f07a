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
        "cpu_class": cpu_class(),
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


def cpu_class() -> str:
    """The CPU's name with what decides its speed in half precision: its ISA level and whether it computes bf16.

    Two machines both called "AMD EPYC" can differ by exactly that (one emulates bf16 at 0.02-0.5x
    float32, another runs it faster than float32), so every figure that depends on it carries it.
    """
    import torch

    from app.devices import native_cpu_bf16

    isa = torch.backends.cpu.get_cpu_capability()
    cpu = torch.cpu
    units = [name for name, has in (("AVX512-BF16", cpu._is_avx512_bf16_supported()),
                                    ("AMX", cpu._is_amx_tile_supported())) if has]
    bf16 = f"bf16 native ({', '.join(units) or 'oneDNN'})" if native_cpu_bf16() else "bf16 emulated"
    return f"{cpu_name()}, {isa}, {bf16}"


def class_of(info: dict) -> str:
    """The CPU class of a result's machine record; records older than the class say only the CPU's name."""
    return info.get("cpu_class") or f"{info['cpu']} (class not recorded)"


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
    return (f"{class_of(info)} ({info['cpu_count']} cores, {info['ram_gib']} GiB RAM), GPU: {info['gpu']}; "
            f"device `{info['device']}`; {info['os']}; Python {info['python']}, torch {v['torch']}, "
            f"numpy {v['numpy']}, OpenCV {v['opencv-python-headless']}, PyPatchMatch {v['pypatchmatch']}, "
            f"scikit-image {v['scikit-image']}; code {info['code']}; {info['date']}"
            + (f"; load average at start {info['load_average']}" if info.get("load_average") is not None else ""))
