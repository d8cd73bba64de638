#!/usr/bin/env bash
# Write the MDN results files from the run folders that benchmarks/run_mdn.sh fills:
# paper-vs-ours tables (reproduce --report-only), per-epoch logs of every cell, pipeline reports and plots.
#   DATA=/path/to/data bash benchmarks/collect_mdn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-${SPIKEDYN_DATA:-data}}
SPIKEDYN=${SPIKEDYN:-.venv/bin/spikedyn}
RESULTS=benchmarks/results
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --report-only --results "$RESULTS"
"$SPIKEDYN" reproduce mdn-table4 --data-root "$DATA" --report-only --results "$RESULTS"
# longer schedules, each in its own run root: MNIST 2nd-RS / 2nd-WDS at 40 epochs, NETtalk 2nd-FS at 80
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --out runs/reproduce-40ep --report-only --results "$RESULTS/mdn-table3-40ep"
"$SPIKEDYN" reproduce mdn-table3 --data-root "$DATA" --out runs/reproduce-80ep --report-only --results "$RESULTS/mdn-table3-80ep"

mkdir -p "$RESULTS/logs/reproduce"
for root in runs/reproduce runs/reproduce-40ep runs/reproduce-80ep; do
    for cell in "$root"/mdn-table*/*/*/seed*; do
        [ -f "$cell/metrics.jsonl" ] || continue
        suffix=${root#runs/reproduce}
        name=$(echo "${cell#$root/}" | tr '/' '_')
        cp "$cell/metrics.jsonl" "$RESULTS/logs/reproduce/$name${suffix}.metrics.jsonl"
    done
done
mkdir -p "$RESULTS/mdn_meta"
"$SPIKEDYN" meta dynamics 2nd-fs 2nd-rs 2nd-m3 2nd-sds 2nd-wds --out "$RESULTS/mdn_meta/paper-presets-dynamics.png"
for run in mnist-seed3154 mnist-slots-seed3154 fsdd-seed3154; do
    dest="$RESULTS/mdn_meta/$run"
    mkdir -p "$dest/phase2" "$dest/phase3"
    cp "runs/meta/$run/report.md" "runs/meta/$run/pipeline.json" "$dest/"
    cp "runs/meta/$run/phase2/clusters.png" "runs/meta/$run/phase2/presets.json" "$dest/phase2/"
    cp "runs/meta/$run/phase3/dynamics.png" "$dest/phase3/"
    [ -f "runs/meta/$run/meta-neurons.json" ] && cp "runs/meta/$run/meta-neurons.json" "$dest/"
    cp "runs/meta/$run/phase1/metrics.jsonl" "$dest/phase1.metrics.jsonl"
done
dest="$RESULTS/mdn_meta/mnist-slots-seed3154"
mkdir -p "$dest/phase2-ncd3" "$dest/phase3-ncd3"
cp runs/meta/mnist-slots-seed3154/phase2-ncd3/{clusters.png,clusters.json,presets.json} "$dest/phase2-ncd3/"
cp runs/meta/mnist-slots-seed3154/phase3-ncd3/{dynamics.png,dynamics.json} "$dest/phase3-ncd3/"
