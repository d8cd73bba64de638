#!/usr/bin/env bash
# Training runs for one GPU lease, side by side on one card (the GPU rows of issues #7 and #9):
#   * brp-table3 MNIST: the spec's conv net under BRP and pseudo-BP (targets 98.5 % / 99.0 %),
#   * brp-fig5 MNIST: TP_err and TP_sign on the same net (TP_BRP is the brp-table3 cell),
#   * nrr-table2 fsdd-deep: the deep NRR row, three seeds, 60 epochs,
#   * MDN's three-layer net under --rule brp with wider hidden layers (2nd-FS and decay-LIF).
# The runs start in their own process sessions, so they go on between two calls on the same machine.
#   * plif mode (issue #8): plif-table4's MNIST PLIF cell (tau0 = 2) alone on the card, with as many epochs as
#     fit SECONDS, the cosine schedule's period set to the same number (benchmarks/cell_epoch_time.py times it).
#     PLIF_SET="batch_size=64 ..." passes training options to the probe and the run (the run folder is then
#     RUNS/plif-<options>, so several sizes run side by side); PLIF_BUDGET_SHARE=N sizes it for N runs at once.
#   * mdn-brp mode (issue #7): MDN's three-layer net on MNIST under --rule brp, one run per
#     NEURON:HIDDEN[:LR[:BATCH[:WINDOW[:SEED]]]], with the epochs and lr step given (the MDN default schedule is 80
#     epochs, lr step 50; LR and BATCH default to the data set's, Adam 1e-3 and 100; the BRP spec's are 1e-4 and 50,
#     constant; WINDOW: the hidden layer's surrogate half-width, --surrogate neuron1=rect:WINDOW, default 0.5;
#     SEED: --seed, default 3154). An empty field keeps its default (2nd-fs:8000:2.5e-4:50::1).
#     97 % under --rule brp: EPOCHS 70, LR_STEP 50, 2nd-fs:8000:2.5e-4:50:0.1 (benchmarks/results/brp_training.md).
# Usage:
#   benchmarks/gpu_training.sh start DATA_ROOT RUNS          start every run (RUNS: where the run folders go)
#   benchmarks/gpu_training.sh plif DATA_ROOT RUNS SECONDS   start the PLIF MNIST cell sized to SECONDS
#   benchmarks/gpu_training.sh mdn-brp DATA_ROOT RUNS EPOCHS LR_STEP NEURON:HIDDEN[:LR[:BATCH[:WINDOW[:SEED]]]]...
#   benchmarks/gpu_training.sh collect RUNS OUT [SECONDS]    wait up to SECONDS (default 0), then copy the
#       run folders' metrics and configs (no checkpoints) into OUT/runs.tar.gz and the logs into OUT/logs.tar.gz
# DATA_ROOT holds MNIST/ and fsdd/.  Each run folder resumes, so `start` again continues what a stop cut off.
set -uo pipefail
py=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONUNBUFFERED=1
mode=${1:?usage: gpu_training.sh start DATA_ROOT RUNS | collect RUNS OUT [SECONDS]}

launch() {  # launch NAME ARGS...: `spikedyn ARGS` in its own session, logged to RUNS/logs/NAME.log
    local name=$1
    shift
    setsid nohup "$py" -m spikedyn "$@" >"$runs/logs/$name.log" 2>&1 </dev/null &
    echo "started $name (pid $!): spikedyn $*"
}

case "$mode" in
start)
    data=${2:?DATA_ROOT}
    runs=${3:?RUNS}
    device=${DEVICE:-cuda}
    mkdir -p "$runs/logs" "$runs/brp-fig5/mnist-brp/lif-identity"
    ln -sfn ../../../brp-table3/mnist-brp/lif-identity/seed42 "$runs/brp-fig5/mnist-brp/lif-identity/seed42"
    common=(--data-root "$data" --device "$device" --quiet)
    launch brp-table3 reproduce brp-table3 --tasks mnist-brp mnist-bptt --seeds 1 --epochs "${BRP_EPOCHS:-30}" \
        --jobs 2 --out "$runs" "${common[@]}"
    launch brp-fig5 reproduce brp-fig5 --tasks mnist-err mnist-sign --seeds 1 --epochs "${BRP_EPOCHS:-30}" \
        --jobs 2 --out "$runs" "${common[@]}"
    launch nrr-deep reproduce nrr-table2 --tasks fsdd-deep --seeds 3 --epochs 60 --lr-step 20 \
        --set model_options.input_scale=39 --jobs 3 --out "$runs" "${common[@]}"
    for spec in 2nd-fs:2000 2nd-fs:8000 lif-identity:8000; do
        neuron=${spec%%:*}
        hidden=${spec##*:}
        launch "mdn-brp-$neuron-$hidden" train --dataset mnist --data-root "$data" --device "$device" --rule brp \
            --neuron "$neuron" --hidden "$hidden" --epochs 20 --lr-step 15 --out "$runs/mdn-brp-$neuron-$hidden"
    done
    ;;
plif)
    data=${2:?DATA_ROOT}
    runs=${3:?RUNS}
    seconds=${4:?SECONDS}
    read -r -a options <<<"${PLIF_SET:-}"
    sets=()
    for option in "${options[@]}"; do sets+=(--set "$option"); done
    name=plif-mnist
    out=$runs
    if [ ${#options[@]} -gt 0 ]; then
        name=plif-$(tr ' =' '-' <<<"${PLIF_SET}")
        out=$runs/$name
    fi
    mkdir -p "$runs/logs"
    start=$SECONDS
    probe=$("$py" "$(dirname "$0")/cell_epoch_time.py" plif-table4 --task mnist-tau2 --neuron plif \
        --data-root "$data" --device "${DEVICE:-cuda}" --budget 1 --warmup "${PROBE_WARMUP:-50}" \
        --batches "${PROBE_BATCHES:-300}" --set "${options[@]}" | tee "$runs/logs/$name-probe.log")
    epoch_s=$(echo "$probe" | sed -n 's/.*about \([0-9.]*\) s an epoch.*/\1/p')
    epoch_s=$(awk -v e="$epoch_s" -v n="${PLIF_BUDGET_SHARE:-1}" 'BEGIN { print e * (n > 1 ? 1.15 : 1) }')
    left=$((seconds - (SECONDS - start) - 15))  # 15 s for the run's own start (data, kernels cached by the probe)
    epochs=$(awk -v l="$left" -v e="$epoch_s" 'BEGIN { n = int(l / e); print (n < 1 ? 1 : n) }')
    echo "$(head -1 <<<"$probe"); $left s left: $epochs epochs, cosine period $epochs"
    launch "$name" reproduce plif-table4 --tasks mnist-tau2 --neurons plif --seeds 1 --epochs "$epochs" \
        --set cosine_period="$epochs" "${sets[@]}" --out "$out" --data-root "$data" --device "${DEVICE:-cuda}" \
        --quiet
    ;;
mdn-brp)
    data=${2:?DATA_ROOT}
    runs=${3:?RUNS}
    epochs=${4:?EPOCHS}
    step=${5:?LR_STEP}
    shift 5
    mkdir -p "$runs/logs"
    for spec in "$@"; do
        IFS=: read -r neuron hidden lr batch window seed <<<"$spec"
        name=mdn-brp-$neuron-$hidden-${epochs}ep-step$step
        extra=()
        if [ -n "${lr:-}" ]; then name+=-lr$lr; extra+=(--lr "$lr"); fi
        if [ -n "${batch:-}" ]; then name+=-b$batch; extra+=(--batch-size "$batch"); fi
        if [ -n "${window:-}" ]; then name+=-w$window; extra+=(--surrogate "neuron1=rect:$window"); fi
        if [ -n "${seed:-}" ]; then name+=-seed$seed; extra+=(--seed "$seed"); fi
        launch "$name" train --dataset mnist --data-root "$data" --device "${DEVICE:-cuda}" --rule brp \
            --neuron "$neuron" --hidden "$hidden" --epochs "$epochs" --lr-step "$step" "${extra[@]}" \
            --out "$runs/$name" --quiet
    done
    ;;
collect)
    runs=${2:?RUNS}
    out=${3:?OUT}
    wait_s=${4:-0}
    end=$((SECONDS + wait_s))
    while [ "$SECONDS" -lt "$end" ] && pgrep -f "spikedyn (reproduce|train)" >/dev/null; do sleep 5; done
    mkdir -p "$out"
    (cd "$runs" && find . -name metrics.jsonl -o -name config.json -o -name '*.md' -o -name '*.json' \
        | grep -v '/logs/' | tar -czf "$out/runs.tar.gz" -T -)
    tar -czf "$out/logs.tar.gz" -C "$runs" logs
    echo "still running: $(pgrep -fc 'spikedyn (reproduce|train)')"
    for f in $(find "$runs" -name metrics.jsonl | sort); do
        echo "$f: $(wc -l <"$f") epochs, last: $(tail -1 "$f" | cut -c1-160)"
    done
    ;;
*)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac
