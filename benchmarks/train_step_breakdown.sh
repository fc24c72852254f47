#!/bin/bash
# Where InterNet's extra train-step time goes: ResNet-50-FPN 512², batch 1, the
# default InterNet and four settings that each drop one part, every line its own
# baseline/InterNet pair timed in one process. Run from the repository root; recorded results
# in benchmarks/results/train_step_breakdown.txt.
set -e
B="--config configs/internet_r50_fpn_coco.yaml --internet_ratio --override train.batch_size=1
   --override model.backbone_weights=none --iters 6 --warmup 2 --noreference"
for o in "" "--override model.intertwiner.merge=separate" "--override model.intertwiner.alignment=none" \
         "--override model.intertwiner.alignment=none --override model.intertwiner.reliable_source=p_l" \
         "--override model.intertwiner.makeup_placement=roi"; do
  echo "== ${o:-default}"
  .venv/bin/python benchmarks/train_step.py $B $o 2>&1 | grep -v "^[IWE][0-9]\|oneDNN\|cuda\|WARNING"
done
