"""The worst error of every contract and reference tolerance, across CPU kernel levels and thread counts.

    python -m benchmarks.tolerance_sweep                      # every level x 1 and 2 threads
    python -m benchmarks.tolerance_sweep --levels avx2 --threads 2
    python -m benchmarks.tolerance_sweep --other-level    # what CI runs: the level below this CPU's, 1 thread

torch picks its kernels by CPU: ATen's vectorised loops (``ATEN_CPU_CAPABILITY``), oneDNN's
convolutions (``ONEDNN_MAX_CPU_ISA``) and MKL's matrix products (``MKL_ENABLE_INSTRUCTIONS``). Each
:data:`LEVELS` entry caps all three at once, so one machine stands in for the CPU classes CI may be
drawn on (a cap above what the CPU has is the CPU's own level: the run records the level torch
really used). For every level and thread count the contract and reference tests run in a fresh
process (``pytest``, the strict-load cases left out: they compare messages, not numbers) with
``INPAINT_TOLERANCE_LOG`` set, so :mod:`tests.tolerances` and the fixture comparisons write the
largest error each tolerance saw. The result, per tolerance: the worst error over all runs, where
it was seen, the tolerance and its margin (tolerance / worst), in
``docs/benchmarks/tolerances.json``; a margin under :data:`tests.tolerances.MARGIN` is flagged.
``--other-level`` is CI's check (``.ci/run``): the tests once more at the level below the machine's own
(AVX-512 -> avx2, AVX2 -> default) with one thread, exiting non-zero when a tolerance does not hold,
so a tolerance that holds only on the CPU class CI happened to draw fails wherever CI runs.
MKL keeps its vendor dispatch on AMD CPUs, so Intel's AVX-512 matrix kernels are only seen on an
Intel machine: rerun there and the file keeps one column per CPU it has seen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import REPO, cpu_name, describe

OUT = REPO / "docs" / "benchmarks" / "tolerances.json"
TESTS = ["tests/test_model_contract.py", *sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob(
    "test_*_reference.py"))]
#: Caps per level for ATen, oneDNN and MKL.
LEVELS: dict[str, dict[str, str]] = {
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
               "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
}


def level_env(level: str, threads: int) -> dict[str, str]:
    """The environment of a child process that computes at ``level`` with ``threads`` threads."""
    return {**os.environ, **LEVELS[level], "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def other_level() -> str:
    """The level below this CPU's own (the CPU's own when there is none below it)."""
    own = capability(dict(os.environ)).lower()
    return {"avx512": "avx2", "avx2": "default"}.get(own.replace("_", ""), "default")


def capability(env: dict[str, str]) -> str:
    """The kernel level torch really uses under ``env`` (a cap above the CPU's own is ignored)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def run_tests(level: str, threads: int, extra: list[str]) -> tuple[dict[str, float], int]:
    """Worst error per tolerance in one pytest run at ``level``/``threads``, and pytest's exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "worst.jsonl"
        env = level_env(level, threads) | {"INPAINT_TOLERANCE_LOG": str(log)}
        cmd = [sys.executable, "-m", "pytest", *TESTS, "-q", "-p", "no:cacheprovider", "-k", "not strict_load",
               *extra]
        code = subprocess.run(cmd, env=env, cwd=REPO).returncode
        worst: dict[str, float] = {}
        for line in log.read_text().splitlines() if log.exists() else ():
            for name, err in json.loads(line).items():
                worst[name] = max(worst.get(name, 0.0), err)
    return worst, code


def summarise(runs: list[dict]) -> dict[str, dict]:
    """Per tolerance: the worst error over ``runs``, the run that gave it, the tolerance and its margin."""
    from tests.tolerances import TOLERANCES

    table: dict[str, dict] = {}
    for run in runs:
        for name, err in run["worst"].items():
            if name not in table or err > table[name]["worst"]:
                table[name] = {"worst": err, "at": f"{run['level']} ({run['capability']}), {run['threads']} thr"}
    for name, row in table.items():
        tol = TOLERANCES.get(name)
        limit = tol.atol if tol else 1.0  # fixture rows record the fraction of their own tolerance used
        row["tolerance"] = limit
        row["margin"] = limit / row["worst"] if row["worst"] else None
    return dict(sorted(table.items()))


def main(argv: list[str] | None = None) -> int:
    from tests.tolerances import MARGIN

    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    args.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args.add_argument("--other-level", action="store_true",
                      help="CI's check: the level below this CPU's, 1 thread, nothing written")
    args.add_argument("--pytest-args", nargs=argparse.REMAINDER, default=[])
    opts = args.parse_args(argv)
    if opts.other_level:
        opts.levels, opts.threads = [other_level()], [1]
    runs, failed = [], 0
    for level in opts.levels:
        for threads in opts.threads:
            worst, code = run_tests(level, threads, opts.pytest_args)
            failed |= code
            runs.append({"level": level, "capability": capability(level_env(level, threads)), "threads": threads,
                         "pytest_exit": code, "worst": worst})
    table = summarise(runs)
    cpu = cpu_name()
    if not opts.other_level:
        saved = json.loads(OUT.read_text()) if OUT.exists() else {}
        saved[cpu] = {"machine": describe(), "runs": runs, "table": table}
        OUT.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"\n{'tolerance':<58} {'worst':>10} {'tolerance':>10} {'margin':>8}  at")
    for name, row in table.items():
        margin = row["margin"]
        flag = "  << under the margin" if margin is not None and margin < MARGIN else ""
        shown = f"{margin:8.1f}" if margin is not None else "   exact"
        print(f"{name:<58} {row['worst']:10.2e} {row['tolerance']:10.2e} {shown}  {row['at']}{flag}")
    if not opts.other_level:
        print(f"\nwritten to {OUT.relative_to(REPO)} under {cpu!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
