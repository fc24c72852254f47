"""Configuration schema, YAML loading, validation and ``key=value`` overrides.

Every option of the detector, the methods and the system is a field here, so that a YAML file
(or ``--override``) can
reach it. Unknown keys are errors that name the full dotted key; values are type-checked.
A YAML file may start from another one with ``base: relative/or/absolute.yaml``.

The package has three modules: ``schema`` (the dataclasses and each option's allowed values),
``loading`` (YAML chain, overrides, type checks) and ``validation`` (cross-field checks).
"""
from internet_tf.config.loading import copy_config, load_config, parse_override
from internet_tf.config.schema import (CHOICES, BufferConfig, Config, ConfigError, DataConfig,
                                       EmbeddedConfig, EvalConfig, HeadConfig, IntertwinerConfig,
                                       LabelEncConfig, ModelConfig, OTConfig, RoiConfig,
                                       RpnConfig, TrainConfig, VocConfig, check_choice)
from internet_tf.config.validation import validate

__all__ = ["BufferConfig", "CHOICES", "Config", "ConfigError", "DataConfig", "EmbeddedConfig",
           "EvalConfig", "HeadConfig", "IntertwinerConfig", "LabelEncConfig", "ModelConfig",
           "OTConfig", "RoiConfig", "RpnConfig", "TrainConfig", "VocConfig", "check_choice",
           "copy_config", "load_config", "parse_override", "validate"]
