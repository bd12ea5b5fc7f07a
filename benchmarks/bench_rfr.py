"""RFR-Net forward time and peak memory per crop size and batch, as a Markdown table.

    python benchmarks/bench_rfr.py                      # 256/512 x batch 1/4, CPU (+ CUDA if present)
    python benchmarks/bench_rfr.py --repeats 2 --devices cpu

Each (device, size, batch) runs in a fresh child process so that one configuration's
allocator caches cannot hide the next one's memory. Peak memory is the growth over the
state just before the forward: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the
kernel's peak RSS (VmHWM, reset through /proc/self/clear_refs) — tracemalloc does not see
torch's allocations. A 32x32 forward first pages in the libraries; the first full-size
forward is the memory measurement and the warm-up; the timed repeats follow. Weights: the
reference's synthetic official weights (``$INPAINT_REFERENCE``, default
``../shared/reference``) or random init if absent — the speed does not depend on them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from app.models.rfr import RFRNet, attention_bytes  # noqa: E402
from app.weights.strict import load_strict  # noqa: E402

MIB = 1 << 20


def reference_dir() -> Path:
    return Path(os.environ.get("INPAINT_REFERENCE", REPO.parent / "shared" / "reference"))


def build_net(device: str) -> tuple[RFRNet, str]:
    """The network with synthetic official weights when the reference is here, else random init."""
    net = RFRNet()
    ref = reference_dir()
    init, manifest = ref / "init_weights.py", ref / "manifests" / "rfr_G.json"
    source = "random init"
    if init.is_file() and manifest.is_file():
        spec = importlib.util.spec_from_file_location("reference_init_weights", init)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        load_strict(net, module.make_state_dict(json.loads(manifest.read_text())["entries"], 1))
        source = f"synthetic official (seed 1) from {ref}"
    return net.to(device).eval(), source


def make_inputs(batch: int, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random image with a centred square hole (a quarter of the area) plus scattered holes."""
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=gen)
    known = (torch.rand(batch, 1, size, size, generator=gen) > 0.05).float()
    known[:, :, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 0
    return (image * known).to(device), known.to(device)


def _rss_peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_now_kib() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def measure_peak(run, device: str) -> float:
    """Peak extra memory (MiB) of one call of ``run`` over what is allocated before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / MIB
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    base = _rss_now_kib()
    run()
    return (_rss_peak_kib() - base) / 1024


def child(device: str, size: int, batch: int, repeats: int) -> dict:
    """One configuration: a tiny warm-up, one forward for memory (and warm-up), ``repeats`` timed ones."""
    net, source = build_net(device)
    image, known = make_inputs(batch, size, device)

    def run(x: torch.Tensor = image, m: torch.Tensor = known) -> None:
        with torch.inference_mode():
            net(x, m)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    run(*make_inputs(1, 32, device))  # lazy library/thread-pool init, which would count as peak memory
    peak = measure_peak(run, device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"device": device, "size": size, "batch": batch, "times": times, "peak_mib": peak, "weights": source,
            "threads": torch.get_num_threads(),
            "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"}


def run_child(device: str, size: int, batch: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--child", device, str(size), str(batch), str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"device": device, "size": size, "batch": batch, "error": tail[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table_row(r: dict) -> str:
    bound = attention_bytes(r["size"], r["size"], r["batch"]) / MIB
    head = f"| {r['device']} | {r['size']}x{r['size']} | {r['batch']} |"
    if "error" in r:
        return f"{head} failed: {r['error'][:80]} | | | {bound:.0f} |"
    t = r["times"]
    spread = f"{min(t):.3f}-{max(t):.3f}" if t else "-"
    per_image = statistics.median(t) / r["batch"] if t else float("nan")
    med = f"{statistics.median(t):.3f}" if t else "-"
    return f"{head} {med} | {spread} | {per_image:.3f} | {r['peak_mib']:.0f} | {bound:.0f} |"


def print_report(results: list[dict], argv: list[str]) -> None:
    ok = [r for r in results if "error" not in r]
    print(f"Command: `python {' '.join(argv)}`")
    if ok:
        names = sorted({f"{r['device']}={r['device_name']}" for r in ok})
        print(f"Torch {torch.__version__}, CPU threads {ok[0]['threads']}, devices {', '.join(names)}; "
              f"weights: {ok[0]['weights']}; {len(ok[0]['times'])} timed repeats after one warm-up.\n")
    print("| device | size | batch | forward median (s) | spread min-max (s) | median per image (s) "
          "| peak memory (MiB) | attention bound (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(table_row(r))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--child", nargs=4, metavar=("DEVICE", "SIZE", "BATCH", "REPEATS"), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        device, size, batch, repeats = args.child
        print(json.dumps(child(device, int(size), int(batch), int(repeats))))
        return
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results = [run_child(d, s, b, args.repeats) for d in devices for s in args.sizes for b in args.batches]
    print_report(results, [os.path.relpath(__file__)] + sys.argv[1:])


if __name__ == "__main__":
    main()
