"""From a config to the train/val indices and ``tf.data`` pipelines (COCO format or
PASCAL VOC, Li et al. 2019, Table 5).

``data.dataset: embedded`` generates (or reuses) the embedded dataset under
``data.embedded.root``; ``coco`` reads the four ``data.*_annotations/_images`` paths;
``voc`` reads ``data.voc.train_split`` / ``val_split`` of the ``data.voc.roots``
(``data/voc.py``). With ``data.embedded.format: voc`` the embedded dataset is also written
as a VOC root (``root/voc``, splits ``train`` and ``val``) and read through the VOC reader,
its classes in the COCO route's order. ``DatasetBundle.kind`` says which reader ran
(``"voc"`` or ``"coco"``), so evaluation picks the matching metric.

Importing this module and ``load_datasets`` need no TensorFlow (the readers are pycocotools,
PIL and XML), so ``internet-train`` checks the data before it imports TF; the ``tf.data``
functions import the pipeline when called.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from internet_tf.config import Config, ConfigError
from internet_tf.data import embedded, voc
from internet_tf.data.coco import CocoIndex, DatasetError


@dataclasses.dataclass
class DatasetBundle:
    train: Optional[CocoIndex]
    val: Optional[CocoIndex]
    kind: str = "coco"  # "voc" when read through the VOC reader (data/voc.py)

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
                                 image_size=e.image_size, seed=e.seed, num_classes=e.num_classes,
                                 colours=e.colours, small_blur=e.small_blur)
    return {"train_annotations": d.train_annotations, "train_images": d.train_images,
            "val_annotations": d.val_annotations, "val_images": d.val_images}


def val_source(cfg: Config) -> str:
    """The configured validation split, in words (for messages; reads and generates nothing)."""
    d = cfg.data
    if d.dataset == "voc":
        return f"VOC split {d.voc.val_split!r} of {', '.join(d.voc.roots)}"
    if d.dataset == "embedded":
        return f"embedded dataset in {d.embedded.root}, {d.embedded.num_val} images"
    return d.val_annotations


def _voc_source(cfg: Config) -> tuple[list, str, str, Optional[list]]:
    """(roots, train split, val split, class names or None for "found") of a VOC read."""
    d = cfg.data
    if d.dataset == "voc":
        classes = list(voc.VOC_CLASSES) if d.voc.classes == "voc" else None
        return list(d.voc.roots), d.voc.train_split, d.voc.val_split, classes
    root = embedded.write_voc(d.embedded.root, dataset_paths(cfg))
    return [root], "train", "val", embedded.class_names(d.embedded.num_classes)


def _load_voc(cfg: Config, train: bool, val: bool) -> DatasetBundle:
    roots, train_split, val_split, classes = _voc_source(cfg)
    verify = cfg.data.verify_images
    fix = ""
    if cfg.data.dataset == "voc" and cfg.data.voc.classes == "voc":
        fix = ("the classes are PASCAL's 20; for a dataset with classes of its own set "
               "data.voc.classes: found (the names in the training split's XML)")
    train_index = voc.load_voc(roots, train_split, classes, training=True, verify_images=verify,
                               drop_difficult=not cfg.data.voc.use_difficult,
                               unknown_category_fix=fix) if train else None
    if classes is None:  # "found": the training split's names, for val too.
        classes = train_index.class_names[1:] if train_index else voc.found_classes(roots, train_split)
        fix = (f"data.voc.classes: found takes the training split's names ({', '.join(classes)}); "
               "the validation split's objects should use them too")
    val_index = voc.load_voc(roots, val_split, classes, training=False, verify_images=verify,
                             require_all=False, unknown_category_fix=fix) if val else None
    return DatasetBundle(train_index, val_index, kind="voc")


def load_datasets(cfg: Config, *, train: bool = True, val: bool = True) -> DatasetBundle:
    d = cfg.data
    if d.dataset == "voc" or (d.dataset == "embedded" and d.embedded.format == "voc"):
        return _load_voc(cfg, train, val)
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
    return DatasetBundle(train_index, val_index, kind="coco")


def train_dataset(bundle: DatasetBundle, cfg: Config, start_step: int = 0, batch_size=None,
                  shard: tuple[int, int] = (1, 0)):
    """The seeded training stream, positioned at ``start_step`` (for resuming).

    ``batch_size`` (default: the global ``train.batch_size``) is a replica's share when the
    stream is split over replicas; ``shard`` picks an input pipeline's batches of it.
    """
    from internet_tf.data import pipeline  # deferred: it imports TF, which load_datasets must not

    batch_size = batch_size or cfg.train.batch_size
    return pipeline.build_dataset(
        bundle.train, image_size=cfg.model.image_size, batch_size=batch_size,
        max_instances=cfg.data.max_instances, training=True, flip=cfg.data.flip,
        shuffle_buffer=cfg.data.shuffle_buffer, seed=cfg.seed,
        skip_examples=start_step * cfg.train.batch_size, shard=shard,
        cache_images=cfg.data.cache_images)


def distributed_train_dataset(bundle: DatasetBundle, cfg: Config, strategy, start_step: int = 0):
    """The training stream split over ``strategy``'s replicas: the global batch of each step
    is the single-device one, cut into per-replica slices in replica order."""
    import tensorflow as tf

    from internet_tf.data import pipeline  # deferred: it imports TF, which load_datasets must not

    global_batch = cfg.train.batch_size
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ConfigError(f"train.batch_size={global_batch} does not split evenly over "
                         f"{replicas} replicas; use a multiple of {replicas}")

    def make(context):  # a tf.distribute.InputContext
        return train_dataset(bundle, cfg, start_step, context.get_per_replica_batch_size(global_batch),
                             shard=(context.num_input_pipelines, context.input_pipeline_id))

    dataset = strategy.distribute_datasets_from_function(make)
    if isinstance(dataset, tf.data.Dataset):
        # The default strategy hands the dataset back as it is; a real one prefetches to its
        # replicas' devices itself. Here a visible GPU gets the batches ahead into its memory.
        dataset = pipeline.to_accelerator(dataset)
    return dataset


def eval_dataset(bundle: DatasetBundle, cfg: Config):
    from internet_tf.data import pipeline  # deferred: it imports TF, which load_datasets must not

    return pipeline.build_dataset(
        bundle.val, image_size=cfg.model.image_size, batch_size=cfg.eval.batch_size,
        max_instances=cfg.data.max_instances, training=False, flip=False)
