"""Baseline vs InterNet on the embedded dataset: same steps, several seeds (Table 2a's
comparison at demo scale). The study ``configs/studies/compare.yaml`` run by
``benchmarks/study.py``: writes ``OUT/study.md`` (mean ± std of AP, AP50, AP75, APs, APm,
APl), ``OUT/study.png`` and ``OUT/study.json``; finished runs in ``OUT/<name>/seed<S>`` are
reused, so an interrupted comparison resumes.

    python benchmarks/compare.py --out runs/compare --seeds 0,1,2
    python benchmarks/compare.py --out runs/compare --override train.steps=300   # shorter

All flags of ``study.py`` apply (``--report_only``, ``--rerun_changed``, ``--variants``).
"""
import os

from absl import app

import study

if __name__ == "__main__":
    study.define_flags(study=os.path.join(study.ROOT, "configs", "studies", "compare.yaml"), out="runs/compare")
    app.run(study.main)
