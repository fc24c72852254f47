#!/bin/bash
# The GPU check: speed where people train. On a machine with an NVIDIA GPU,
# from the repository root, with the venv made (`make venv` creates .venv):
#
#     bash benchmarks/gpu_check.sh
#
# (a) runs the unit tests that touch dtypes and XLA:
#     tests/training/test_training_mixed_precision.py, tests/training/test_training_jit.py,
#     tests/modeling/test_modeling_batch_norm.py (BatchNorm's kernel on a bfloat16 map);
# (b) times baseline and InterNet train steps, ResNet-50-FPN 512², batch 8, in float32 /
#     bfloat16 / float16 (train.mixed_precision none|bfloat16|float16), each without and
#     with XLA (train.jit_compile false|true), with benchmarks/train_step.py --internet_ratio
#     (alternating rounds in one process; it prints images/s, InterNet / baseline, forward
#     FLOPs, achieved GFLOP/s and achieved / the GPU's matmul ceiling for that dtype). XLA
#     cannot compile this step (CropAndResize has no XLA kernel, see
#     internet_tf/graph/jit.py): the jit_compile=true runs are expected to stop with that
#     error and are listed as failed; set JIT="false auto" to time the fallback instead;
# (c) trains the demo for 300 steps (configs/demo.yaml, its two lr drops scaled from
#     380/470 of 500 to 228/282 of 300) and prints its COCO AP;
# (d) times the exported model's inference (benchmarks/export_inference.py, batch 1 and 8);
# (e) profiles where a float32 batch-8 train step's GPU time goes (benchmarks/profile_step.py).
# Everything goes to benchmarks/results/gpu/gpu_check_<UTC time>.log (the folder is made when
# a GPU was found) and to the terminal; a summary of (b)-(d) ends the log. A part that fails
# is reported and the next one runs; the exit status is 1 if any part failed.
#
# Without a GPU (no working nvidia-smi, or TensorFlow sees none) it stops at once with a
# message and exit status 3 (no GPU) or 4 (TensorFlow without GPU support), running nothing.
# Environment: PY (default .venv/bin/python), STEP_ITERS (20), MIXED ("none bfloat16
# float16"), JIT ("false true"), DEMO_STEPS (300).
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${PY:-.venv/bin/python}
STEP_ITERS=${STEP_ITERS:-20}
MIXED=${MIXED:-none bfloat16 float16}
JIT=${JIT:-false true}
DEMO_STEPS=${DEMO_STEPS:-300}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi is missing or fails); this script" \
       "needs one. Nothing was run." >&2
  exit 3
fi
if [ ! -x "$PY" ]; then
  echo "gpu_check: no Python at $PY: run 'make venv' first (or set PY)." >&2
  exit 2
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
if ! "$PY" -c "import sys, tensorflow as tf; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)"; then
  echo "gpu_check: nvidia-smi sees a GPU but TensorFlow does not: install TensorFlow with its CUDA" \
       "libraries in the venv (pip install 'tensorflow[and-cuda]==<the version in requirements.txt>')." \
       "Nothing was run." >&2
  exit 4
fi

STAMP=$(date -u +%Y%m%d_%H%M%S)
mkdir -p benchmarks/results/gpu
LOG="benchmarks/results/gpu/gpu_check_${STAMP}.log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_XXXXXX")
trap 'rm -rf "$WORK"' EXIT
exec > >(tee -a "$LOG") 2>&1
FAILED=()

section() { echo; echo "=== $1 ($(date -u +%H:%M:%S) UTC)"; }
# step NAME CMD...: runs CMD, its output also kept in $WORK/NAME.out; records a failure.
step() {
  local name=$1; shift
  echo "\$ $*"
  "$@" 2>&1 | tee "$WORK/$name.out"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "!! $name failed (exit $rc)"
    FAILED+=("$name")
  fi
}

section "machine"
echo "log: $LOG"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
nvidia-smi
"$PY" -c "import tensorflow as tf; print('tensorflow', tf.__version__, tf.config.list_physical_devices('GPU')); print(tf.sysconfig.get_build_info())"
echo "CPU: $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

section "(a) unit tests that touch dtypes and XLA"
step tests "$PY" -m pytest -q tests/training/test_training_mixed_precision.py tests/training/test_training_jit.py \
  tests/modeling/test_modeling_batch_norm.py

section "(b) train step, ResNet-50-FPN 512², batch 8: baseline and InterNet"
for mp in $MIXED; do
  for jit in $JIT; do
    echo; echo "--- train.mixed_precision=$mp train.jit_compile=$jit"
    step "step_${mp}_${jit}" "$PY" benchmarks/train_step.py --config configs/internet_r50_fpn_coco.yaml \
      --internet_ratio --noreference --iters "$STEP_ITERS" --warmup 5 \
      --override train.batch_size=8 --override model.backbone_weights=none \
      --override "train.mixed_precision=$mp" --override "train.jit_compile=$jit"
  done
done

section "(c) the demo, $DEMO_STEPS steps"
DEMO_DIR="$WORK/demo"
drops="[$((380 * DEMO_STEPS / 500)),$((470 * DEMO_STEPS / 500))]"
start=$(date +%s)
step demo "$PY" -m internet_tf.cli.train --config configs/demo.yaml --model_dir "$DEMO_DIR" \
  --override "train.steps=$DEMO_STEPS" --override "train.lr_drop_steps=$drops"
echo "demo: $(( $(date +%s) - start )) s"
if [ -f "$DEMO_DIR/eval/metrics.json" ]; then
  "$PY" -c "import json, sys; m = json.load(open(sys.argv[1])); print('demo metrics:', ', '.join(f'{k} {m[k]:.4f}' for k in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl') if k in m))" \
    "$DEMO_DIR/eval/metrics.json" | tee "$WORK/demo_metrics.out"
else
  echo "!! demo: no $DEMO_DIR/eval/metrics.json"
  FAILED+=("demo_metrics")
fi

section "(d) exported model inference (SavedModel, ResNet-50-FPN 512²)"
for batch in 1 8; do
  step "export_b$batch" "$PY" benchmarks/export_inference.py --batch "$batch" --iters 20 --warmup 3
done

section "(e) where a float32 batch-8 train step's GPU time goes"
step profile "$PY" benchmarks/profile_step.py --config configs/internet_r50_fpn_coco.yaml \
  --override train.batch_size=8 --override model.backbone_weights=none --steps 5 --iters 5 --nodes 25

section "summary"
for mp in $MIXED; do
  for jit in $JIT; do
    f="$WORK/step_${mp}_${jit}.out"
    [ -f "$f" ] || continue
    echo "train step mixed_precision=$mp jit_compile=$jit:"
    grep -E "median step|/ baseline step time|achieved / matmul ceiling|^ceiling" "$f" | sed 's/^/  /'
  done
done
[ -f "$WORK/demo_metrics.out" ] && cat "$WORK/demo_metrics.out"
for batch in 1 8; do
  f="$WORK/export_b$batch.out"
  [ -f "$f" ] && { echo "export inference, batch $batch:"; grep -E "InterNet / baseline inference time|images/s, detections" "$f" | sed 's/^/  /'; }
done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED: ${FAILED[*]} (see above)"
  exit 1
fi
echo "all parts ran; log: $LOG"
