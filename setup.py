"""Install ReferFormer Studio: the ``referformer_core`` model package, ``annotations`` and ``train``."""
from setuptools import find_packages, setup

setup(
    name="referformer-studio",
    version="0.1.0",
    description="ReferFormer (CVPR 2022) behind a video annotation studio",
    python_requires=">=3.10",
    packages=find_packages(include=["referformer_core", "referformer_core.*", "annotations", "annotations.*", "train", "train.*"]),
    install_requires=[
        "torch>=2.4",
        "torchvision",
        "transformers>=4.40",
        "timm>=1.0",
        "gradio>=5",
        "opencv-python",
        "numpy",
        "av",
        "pycocotools",
        "einops",
    ],
    extras_require={
        "dev": ["pytest", "hypothesis", "tokenizers"],
    },
    entry_points={"console_scripts": ["referformer=referformer_core.cli:main"]},
)
