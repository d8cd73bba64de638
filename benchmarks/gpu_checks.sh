#!/usr/bin/env bash
# The GPU checks of issue #10 in one run, for a machine with one CUDA GPU (about 10 minutes):
#   1. the kernel tests on the device (tests/kernels: Triton kernels against the reference path),
#   2. the GPU speed benchmark (results/speed_gpu.{json,md} under OUT, the card named in them),
#   3. one MNIST epoch of the MDN net (2nd-FS, T=20, batch 100) through `spikedyn train --device cuda`.
# Usage: benchmarks/gpu_checks.sh DATA_ROOT OUT   (DATA_ROOT holds MNIST/; OUT receives results and logs)
# DEVICE=cpu SPEED="--quick --workloads mlp-small" benchmarks/gpu_checks.sh ... tries the plumbing on a CPU.
set -euo pipefail
data=${1:?usage: benchmarks/gpu_checks.sh DATA_ROOT OUT}
out=${2:?usage: benchmarks/gpu_checks.sh DATA_ROOT OUT}
py=${PYTHON:-python}
device=${DEVICE:-cuda}
speed=${SPEED:---rounds 20 --warmup 3}
mkdir -p "$out"
"$py" -m spikedyn info | tee "$out/info.txt"
"$py" -m pytest -q tests/kernels 2>&1 | tee "$out/kernel_tests.txt"
"$py" benchmarks/speed_gpu.py --device "$device" $speed --out "$out/speed_gpu" 2>&1 | tee "$out/speed_gpu.log"
"$py" -m spikedyn train --dataset mnist --data-root "$data" --neuron 2nd-fs --epochs 1 --device "$device" \
    --out "$out/mnist-2nd-fs-epoch" 2>&1 | tee "$out/mnist_epoch.log"
"$py" - "$out/mnist-2nd-fs-epoch/metrics.jsonl" <<'PY'
import json, sys
record = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"one MNIST epoch (train + test evaluation): {record['seconds']} s, test accuracy {100 * record['test_accuracy']:.2f} %")
PY
