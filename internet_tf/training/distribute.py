"""Distribution strategies: ``--strategy auto|default|mirrored|multi_worker``.

- ``default``: one device (the first GPU if any, else the CPU).
- ``mirrored``: ``MirroredStrategy`` over every visible GPU (or every logical CPU device,
  see ``split_cpu``).
- ``multi_worker``: ``MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG``.
- ``auto``: ``mirrored`` when more than one GPU is visible, else ``default``.

The global batch (``train.batch_size``) is split evenly over the replicas. Only the chief
(worker 0, or the only process) writes checkpoints, summaries and exports; the other
workers save their checkpoints into a scratch folder that is removed afterwards, because
saving distributed variables may need every worker to take part.
"""
from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf

from internet_tf.training.strategy_names import STRATEGIES


class StrategyError(ValueError):
    """A strategy that cannot be built as asked (unknown name, bad TF_CONFIG, bad split)."""


def split_cpu(num_devices: int) -> None:
    """Splits the physical CPU into ``num_devices`` logical devices (so ``mirrored`` can be
    tried without GPUs). Must run before TensorFlow executes any op."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(num_devices))
    except RuntimeError as e:
        raise StrategyError(f"cannot split the CPU into {num_devices} devices: TensorFlow is "
                            f"already initialised ({e})") from e


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise StrategyError("--strategy multi_worker needs TF_CONFIG, e.g. "
                            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                            '"task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise StrategyError(f"TF_CONFIG is not a valid cluster spec ({e}): {raw!r}") from e
    if not workers or not 0 <= index < len(workers) + len(config["cluster"].get("chief", [])):
        raise StrategyError(f"TF_CONFIG task index {index} is outside the cluster {workers}")
    return config


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        _tf_config()  # a clear error before TensorFlow's own
        # Must come before anything initialises TensorFlow's context.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "auto":  # physical devices: listing them leaves the context uninitialised
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    # On CPUs NCCL does not exist; the reduction then goes through one device.
    ops = None if gpus else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=ops)


def split_batch(strategy: tf.distribute.Strategy, batch):
    """A global batch (a nest of tensors, examples first) cut into equal per-replica slices
    in replica order — the split ``data.datasets.distributed_train_dataset`` gives."""
    share = tf.nest.flatten(batch)[0].shape[0] // strategy.num_replicas_in_sync

    def slice_for(context):
        first = context.replica_id_in_sync_group * share
        return tf.nest.map_structure(lambda value: value[first:first + share], batch)

    return strategy.experimental_distribute_values_from_function(slice_for)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True in a single process and on the chief (worker 0, or the ``chief`` task) of a
    cluster: TF's own answer, ``strategy.extended.should_checkpoint``."""
    return strategy.extended.should_checkpoint


def worker_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this process writes: ``model_dir`` on the chief, a scratch folder elsewhere."""
    if is_chief(strategy):
        return model_dir
    resolver = strategy.cluster_resolver
    return os.path.join(model_dir, ".workers", f"{resolver.task_type}_{resolver.task_id}")


def remove_worker_dir(model_dir: str, strategy: tf.distribute.Strategy) -> None:
    if not is_chief(strategy):
        shutil.rmtree(worker_dir(model_dir, strategy), ignore_errors=True)
        try:
            os.rmdir(os.path.join(model_dir, ".workers"))
        except OSError:
            pass  # another worker's folder is still there
