"""Evaluation: COCO box metrics and COCO-format detection export."""
from internet_tf.evaluation.coco_eval import CocoEvaluator, format_metrics

__all__ = ["CocoEvaluator", "format_metrics"]
