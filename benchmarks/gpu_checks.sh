#!/usr/bin/env bash
# The GPU checks of issue #10 in one run, for a machine with one CUDA GPU (about 8 minutes):
#   1. the kernel tests on the device (tests/kernels: the Triton kernels against the reference path),
#   2. one MNIST epoch of the MDN net (2nd-FS, T=20, batch 100) through `spikedyn train --device cuda`,
#   3. the GPU speed benchmark (OUT/speed_gpu.{json,md}, the card named in them; written after every workload).
# Usage: benchmarks/gpu_checks.sh DATA_ROOT OUT   (DATA_ROOT holds MNIST/; OUT receives the results and logs)
# Each step has its own time limit and a failing step does not stop the next one; the exit status is
# the number of failed steps.
# DEVICE=cpu SPEED="--quick --workloads mlp-small" benchmarks/gpu_checks.sh ... tries the plumbing on a CPU.
set -uo pipefail
data=${1:?usage: benchmarks/gpu_checks.sh DATA_ROOT OUT}
out=${2:?usage: benchmarks/gpu_checks.sh DATA_ROOT OUT}
py=${PYTHON:-python}
device=${DEVICE:-cuda}
speed=${SPEED:---rounds 20 --warmup 3 --workloads mlp-small,conv,mlp-large,recurrent}
mkdir -p "$out"
failed=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.log, count a failure
    local name=$1 limit=$2
    shift 2
    echo "=== $name (at most ${limit}s): $*"
    local begin=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - begin))s"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}
step info 60 "$py" -m spikedyn info
step kernel_tests 180 "$py" -m pytest -q -p no:cacheprovider tests/kernels/test_triton_neurons.py \
    tests/kernels/test_triton_nrr.py tests/kernels/test_backend_choice.py
run_dir=$(mktemp -d)/mnist-2nd-fs-epoch
step mnist_epoch 120 "$py" -m spikedyn train --dataset mnist --data-root "$data" --neuron 2nd-fs --epochs 1 \
    --device "$device" --out "$run_dir"
if [ -f "$run_dir/metrics.jsonl" ]; then
    cp "$run_dir/metrics.jsonl" "$out/mnist_epoch_metrics.jsonl"
    "$py" - "$run_dir/metrics.jsonl" <<'PY'
import json, sys
record = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"one MNIST epoch: training {record.get('train_seconds')} s, with the test evaluation {record['seconds']} s, "
      f"test accuracy {100 * record['test_accuracy']:.2f} %")
PY
fi
# shellcheck disable=SC2086  # $speed holds several options
step speed_gpu 300 "$py" benchmarks/speed_gpu.py --device "$device" $speed --out "$out/speed_gpu"
echo "=== failed steps: $failed"
exit "$failed"
