#!/usr/bin/env bash
# MDN end to end on the data at hand: Table 3 and Table 4 cells, the meta-neuron pipeline on MNIST
# (per-neuron and per-batch-slot theta) and on the free spoken digits, then the results files.
#   DATA=/path/to/data bash benchmarks/run_mdn.sh
# Every step resumes: cells and pipeline phases already finished are not rerun.
# CPU schedule (2 cores): MNIST 20 epochs with the learning-rate step at 15 (3 seeds for 2nd-FS
# and LIF, 2 for the others), the small tasks 40 epochs with the step at 30, 3 seeds (NETtalk:
# 2nd-FS and LIF, 1 seed, 20 epochs; Table 4: 1 seed). The paper: 80 epochs, step 50, 5 seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-${SPIKEDYN_DATA:-data}}
SPIKEDYN=${SPIKEDYN:-.venv/bin/spikedyn}
export OMP_NUM_THREADS=1

"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --tasks mnist --seeds 2 --epochs 20 --lr-step 15 --jobs 2 --quiet
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --tasks mnist --neurons 2nd-sds --seeds 3 --epochs 20 --lr-step 15 --quiet
# 2nd-RS and 2nd-WDS also at 40 epochs (step 30), and NETtalk 2nd-FS at the paper's 80 (step 50), each in its own root
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --tasks mnist --neurons 2nd-rs 2nd-wds --seeds 3 --epochs 40 --lr-step 30 \
    --jobs 2 --out runs/reproduce-40ep --quiet
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --tasks nettalk --neurons 2nd-fs --seeds 1 --out runs/reproduce-80ep --quiet
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --tasks mnist --neurons 2nd-fs lif --seeds 3 --epochs 20 --lr-step 15 --jobs 2 --quiet
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --tasks fsdd timit-gender nmnist --seeds 3 --epochs 40 --lr-step 30 --jobs 2 --quiet
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --tasks nettalk --neurons 2nd-fs lif --seeds 1 --epochs 20 --lr-step 15 --quiet
"$SPIKEDYN" reproduce mdn-table4 --data-root "$DATA" --seeds 1 --epochs 40 --lr-step 30 --jobs 2 --quiet
"$SPIKEDYN" meta pipeline --dataset mnist --data-root "$DATA" --out runs/meta/mnist-seed3154 --quiet
"$SPIKEDYN" meta pipeline --dataset mnist --data-root "$DATA" --theta-per-batch-slot --out runs/meta/mnist-slots-seed3154 --quiet
"$SPIKEDYN" meta pipeline --dataset fsdd --data-root "$DATA" --out runs/meta/fsdd-seed3154 --quiet
# the authors' per-batch-slot run, with M = 3 forced on the (theta_c, theta_d) cloud (mean shift finds 1)
"$SPIKEDYN" meta cluster runs/meta/mnist-slots-seed3154/phase1 --n-cd 3 --out runs/meta/mnist-slots-seed3154/phase2-ncd3
"$SPIKEDYN" meta dynamics runs/meta/mnist-slots-seed3154/phase2-ncd3/presets.json 2nd-fs 2nd-rs 2nd-m3 \
    --out runs/meta/mnist-slots-seed3154/phase3-ncd3/dynamics.png
bash benchmarks/collect_mdn.sh
