"""InterNet-TF: Feature Intertwiner (ICLR 2019) on Faster R-CNN + FPN in TF 2 / Keras 3."""
from setuptools import find_packages, setup

with open("requirements.txt") as f:
    requirements = [line.strip() for line in f if line.strip() and not line.startswith("#")]

setup(
    name="internet-tf",
    version="0.1.0",
    description="Feature Intertwiner object detection (Faster R-CNN + FPN) in TensorFlow 2 / Keras 3",
    packages=find_packages(include=["internet_tf", "internet_tf.*"]),
    package_data={"internet_tf": ["configs/*.yaml", "configs/ablations/*.yaml"]},
    python_requires=">=3.10",
    install_requires=requirements,
    extras_require={"tsne": ["scikit-learn", "matplotlib>=3.8"]},
    entry_points={
        "console_scripts": [
            "internet-train=internet_tf.cli.train:run",
            "internet-eval=internet_tf.cli.evaluate:run",
            "internet-export=internet_tf.cli.export:run",
            "internet-predict=internet_tf.cli.predict:run",
            "internet-mechanism=internet_tf.cli.mechanism:run",
            "internet-feature-norms=internet_tf.cli.feature_norms:run",
            "internet-convert=internet_tf.cli.convert:run",
        ]
    },
)
