#!/usr/bin/env bash
# The GPU path in one run (benchmarks/gpu_check.py): run as is on a GPU machine, from the checkout, with the
# project's requirements installed. At most 8 minutes: no step starts after 330 s (--budget-s), a 7m50s
# timeout stops the run whatever happens. Results: docs/benchmarks/gpu-check.json, breakdown.json (GPU run),
# diffusion.json (cuda), and the re-rendered docs/benchmarks/README.md.
#   bash benchmarks/gpu_check.sh                      # the real run
#   bash benchmarks/gpu_check.sh --device cpu --quick # dry run, prints the record, keeps nothing
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 470 python -m benchmarks.gpu_check "$@"
