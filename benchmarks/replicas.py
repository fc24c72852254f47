"""Images/s of 1 vs 2 replicas on CPU (MirroredStrategy): runs
``benchmarks/train_step.py`` once per setting, each in a fresh process (the CPU is split
into logical devices before TensorFlow starts), and prints a table.

    python benchmarks/replicas.py --config configs/demo.yaml --iters 10

With 2 replicas on one 2-core machine both replicas share the same cores, so this measures
the overhead of the MirroredStrategy path (split batch, all-reduced gradients, synchronised
BatchNorm), not a speed-up; on N GPUs each replica has its own device.
"""
from __future__ import annotations

import re
import subprocess
import sys

from absl import app, flags

flags.DEFINE_string("config", "configs/demo.yaml", "Config to time.")
flags.DEFINE_multi_string("override", [], "key=value config override, repeatable.")
flags.DEFINE_integer("warmup", 3, "Untimed steps after tracing.")
flags.DEFINE_integer("iters", 10, "Timed steps.")
flags.DEFINE_list("replicas", ["1", "2"], "Replica counts to compare.")
FLAGS = flags.FLAGS

LINE = re.compile(r"median step ([0-9.]+) s over \d+ steps, ([0-9.]+) images/s")


def main(argv):
    del argv
    rows = []
    for n in FLAGS.replicas:
        cmd = [sys.executable, "benchmarks/train_step.py", "--config", FLAGS.config, "--noreference",
               f"--replicas={n}", f"--warmup={FLAGS.warmup}", f"--iters={FLAGS.iters}",
               *[f"--override={o}" for o in FLAGS.override]]
        out = subprocess.run(cmd, capture_output=True, text=True)
        match = LINE.search(out.stdout)
        if out.returncode or not match:
            sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}{out.stderr[-3000:]}")
        print(out.stdout.strip().splitlines()[-1], flush=True)
        rows.append((int(n), float(match.group(1)), float(match.group(2))))
    print("\n| replicas | median step (s) | images/s | vs 1 replica |\n|---|---|---|---|")
    for n, step, ips in rows:
        print(f"| {n} | {step:.3f} | {ips:.2f} | {ips / rows[0][2]:.2f}× |")


if __name__ == "__main__":
    app.run(main)
