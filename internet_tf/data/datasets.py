"""From a config to the train/val indices and ``tf.data`` pipelines (SPEC §5 "Data").

``data.dataset: embedded`` generates (or reuses) the embedded dataset under
``data.embedded.root``; ``coco`` reads the four ``data.*_annotations/_images`` paths.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf

from internet_tf.config import Config, ConfigError
from internet_tf.data import embedded, pipeline
from internet_tf.data.coco import CocoIndex, DatasetError


@dataclasses.dataclass
class DatasetBundle:
    train: Optional[CocoIndex]
    val: Optional[CocoIndex]

    @property
    def num_classes(self) -> int:
        return (self.train or self.val).num_classes

    @property
    def label_to_cat_id(self) -> dict:
        return (self.train or self.val).label_to_cat_id

    @property
    def class_names(self) -> list:
        return (self.train or self.val).class_names


def dataset_paths(cfg: Config) -> dict:
    """The four annotation/image paths of the configured dataset (generating it if embedded)."""
    d = cfg.data
    if d.dataset == "embedded":
        e = d.embedded
        return embedded.generate(e.root, num_train=e.num_train, num_val=e.num_val,
                                 image_size=e.image_size, seed=e.seed, num_classes=e.num_classes)
    return {"train_annotations": d.train_annotations, "train_images": d.train_images,
            "val_annotations": d.val_annotations, "val_images": d.val_images}


def load_datasets(cfg: Config, *, train: bool = True, val: bool = True) -> DatasetBundle:
    paths = dataset_paths(cfg)
    verify = cfg.data.verify_images
    train_index = CocoIndex.from_files(paths["train_annotations"], paths["train_images"],
                                       training=True, verify_images=verify) if train else None
    val_index = CocoIndex.from_files(paths["val_annotations"], paths["val_images"],
                                     training=False, verify_images=verify) if val else None
    if train_index is not None and val_index is not None and train_index.cat_ids != val_index.cat_ids:
        raise DatasetError(
            f"train and val annotation files list different categories "
            f"({train_index.cat_ids} vs {val_index.cat_ids}); labels would not line up")
    return DatasetBundle(train_index, val_index)


def train_dataset(bundle: DatasetBundle, cfg: Config, start_step: int = 0, batch_size=None,
                  shard: tuple[int, int] = (1, 0)):
    """The seeded training stream, positioned at ``start_step`` (for resuming).

    ``batch_size`` (default: the global ``train.batch_size``) is a replica's share when the
    stream is split over replicas; ``shard`` picks an input pipeline's batches of it.
    """
    batch_size = batch_size or cfg.train.batch_size
    return pipeline.build_dataset(
        bundle.train, image_size=cfg.model.image_size, batch_size=batch_size,
        max_instances=cfg.data.max_instances, training=True, flip=cfg.data.flip,
        shuffle_buffer=cfg.data.shuffle_buffer, seed=cfg.seed,
        skip_examples=start_step * cfg.train.batch_size, shard=shard)


def distributed_train_dataset(bundle: DatasetBundle, cfg: Config, strategy, start_step: int = 0):
    """The training stream split over ``strategy``'s replicas: the global batch of each step
    is the single-device one, cut into per-replica slices in replica order."""
    global_batch = cfg.train.batch_size
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ConfigError(f"train.batch_size={global_batch} does not split evenly over "
                         f"{replicas} replicas; use a multiple of {replicas}")

    def make(context: tf.distribute.InputContext):
        return train_dataset(bundle, cfg, start_step, context.get_per_replica_batch_size(global_batch),
                             shard=(context.num_input_pipelines, context.input_pipeline_id))

    return strategy.distribute_datasets_from_function(make)


def eval_dataset(bundle: DatasetBundle, cfg: Config):
    return pipeline.build_dataset(
        bundle.val, image_size=cfg.model.image_size, batch_size=cfg.eval.batch_size,
        max_instances=cfg.data.max_instances, training=False, flip=False)
