"""The training loop: one traced ``tf.function`` step over the strategy's
replicas, global-norm clipping, ``tf.train.CheckpointManager`` checkpoints (resume on
rerun), TensorBoard scalars and class-buffer histograms, progress with ETA (a bar on a
terminal, plain lines elsewhere: ``progress.py``), and a
stop on non-finite losses. Only the chief writes into ``model_dir``.

Checkpoints are crash-safe: TF writes a checkpoint's files first and then replaces the
``checkpoint`` index file atomically, so a process killed at any moment leaves the index
pointing at the last complete checkpoint, which the rerun restores.
"""
from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from internet_tf.config import Config
from internet_tf.data.datasets import DatasetBundle, distributed_train_dataset
from internet_tf.run_dir import latest_checkpoint, write_run
from internet_tf.training import distribute, optim
from internet_tf.training.init_from import init_at_fresh_start, note_resume
from internet_tf.progress import Progress
from internet_tf.training.checkpoint import TrainingCheckpoint
from internet_tf.training.step import build_train_step


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/Inf loss; the last good checkpoint is kept."""


class Trainer:
    """Owns checkpoints and summaries of one ``model_dir`` for ready-built data, model and
    optimizer (``assembly/train.py: build_trainer`` builds them from a config).
    ``restore_model(model_cfg, num_classes, checkpoint) -> detector`` is handed to the
    methods' ``start_fresh`` when the run starts without a checkpoint, for a method that
    starts from another run's detector (LabelEnc step 2); the assembly, above training,
    provides it."""

    def __init__(self, cfg: Config, model_dir: str, data: DatasetBundle, model, optimizer,
                 strategy: tf.distribute.Strategy | None = None, restore_model=None):
        self.cfg, self.model_dir, self.data = cfg, model_dir, data
        self.restore_model = restore_model
        self.model, self.optimizer = model, optimizer
        self.strategy = strategy or tf.distribute.get_strategy()
        os.makedirs(model_dir, exist_ok=True)
        self.num_train_images = len(data.train)
        self.total_steps = optim.total_steps(cfg.train, self.num_train_images)
        for method in model.methods:
            method.set_total_steps(self.total_steps)
        self.is_chief = distribute.is_chief(self.strategy)
        # Every worker saves (distributed variables may need all of them); only the chief
        # into model_dir, the others into a scratch folder removed after training.
        self.checkpoint = TrainingCheckpoint(model, optimizer)  # the same under every precision policy
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(distribute.worker_dir(model_dir, self.strategy), "checkpoints"),
            max_to_keep=cfg.train.keep_checkpoints)
        if self.is_chief:
            write_run(model_dir, cfg, data)

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def restore(self) -> int:
        """Restores the chief's latest checkpoint if there is one; at a fresh start, loads
        ``train.init_from``'s parts instead (``training/init_from.py``) and lets each method
        initialise itself. Returns the step."""
        latest = latest_checkpoint(self.model_dir)
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("Restored %s (step %d)", latest, self.step)
            note_resume(self.cfg, latest)
        else:
            init_at_fresh_start(self.model, self.cfg, self.model_dir, self.restore_model, self.is_chief)
            for method in self.model.methods:
                method.start_fresh(self.model, self.restore_model)
        return self.step

    # -- the loop ------------------------------------------------------------------------
    def train(self) -> dict:
        cfg = self.cfg
        self.history = []  # total loss of every step run by this call
        start = self.restore()
        if start >= self.total_steps:
            logging.info("Training already finished (step %d of %d).", start, self.total_steps)
            print(f"Training already at step {start}/{self.total_steps}; nothing to do.")
            return {}
        # The data stream continues where it stopped; the model's sampling RNG is reseeded
        # from the start step, so a resumed run is deterministic too.
        keras.utils.set_random_seed(cfg.seed + start)
        replicas = self.strategy.num_replicas_in_sync
        print(f"Training steps {start + 1}..{self.total_steps} on {replicas} replica"
              f"{'s' if replicas > 1 else ''} ({type(self.strategy).__name__}), global batch "
              f"{cfg.train.batch_size}" + ("" if self.is_chief else "; this worker is not the chief"))
        progress = Progress(self.total_steps, start_step=start, images_per_step=cfg.train.batch_size,
                            every=cfg.train.log_every)
        with progress.waiting(start + 1):  # still-running lines until the first step is done
            dataset = distributed_train_dataset(self.data, cfg, self.strategy, start_step=start)
            step_fn = build_train_step(self.model, self.optimizer, cfg.train.clip_norm, self.strategy,
                                       jit_compile=cfg.train.jit_compile)
            writer = (tf.summary.create_file_writer(os.path.join(self.model_dir, "train")) if self.is_chief
                      else tf.summary.create_noop_writer())
            iterator = iter(dataset)
        last = {}
        t_window, n_window = time.time(), 0
        for step in range(start + 1, self.total_steps + 1):
            with progress.waiting(step):
                values = step_fn(next(iterator))
            values = {k: float(v) for k, v in values.items()}
            # A float16 overflow is no error: the step skipped it and lowered the loss scale.
            if (not np.isfinite(values["grad_norm"]) and np.isfinite(values["loss/total"])
                    and not values.get("loss_scale_overflow")):
                raise NonFiniteLossError(
                    f"non-finite gradient at step {step} (loss/total={values['loss/total']}); the "
                    f"step was not applied. The last good checkpoint "
                    f"{self.manager.latest_checkpoint} is kept.")
            if not np.isfinite(values["loss/total"]):
                bad = [k for k, v in values.items() if k.startswith("loss/") and not np.isfinite(v)]
                raise NonFiniteLossError(
                    f"non-finite loss at step {step}: {', '.join(bad)} "
                    f"({', '.join(f'{k}={values[k]}' for k in bad)}). The last good checkpoint "
                    f"{self.manager.latest_checkpoint} is kept.")
            n_window += 1
            progress.update(step, values["loss/total"], values["lr"])
            if step % cfg.train.summary_every == 0 or step == self.total_steps:
                elapsed = time.time() - t_window
                values["images_per_second"] = n_window * cfg.train.batch_size / max(elapsed, 1e-9)
                with writer.as_default(step=step):
                    for k, v in values.items():
                        tf.summary.scalar(("train/" + k), v)
                    for method in self.model.methods:
                        method.write_summaries()
                t_window, n_window = time.time(), 0
            if step % cfg.train.checkpoint_every == 0 or step == self.total_steps:
                self.manager.save(checkpoint_number=step)
            last = values
            self.history.append(values["loss/total"])
        writer.flush()
        distribute.remove_worker_dir(self.model_dir, self.strategy)
        return last
