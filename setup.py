"""Installs the dependencies of the DPC plug-in; the code itself runs from the repository root.

The repository's top-level ``datasets`` and ``trainers`` folders are not installed as packages on purpose:
a global ``datasets`` package would shadow HuggingFace's ``datasets`` for the rest of the environment.
``train.py``, ``python -m tools.<name>`` and the scripts run from the checkout, as in the CoOp family.
"""
from setuptools import setup

setup(
    name="dpc-prompt-tuning",
    version="0.1.0",
    description="Dual-Prompt Collaboration (CVPR 2025) for CoOp-family CLIP prompt tuning",
    python_requires=">=3.8",  # the oldest tested, with the oldest torch (.ci/run)
    packages=[],
    py_modules=[],
    install_requires=[
        "torch>=2.4",  # the oldest tested (.ci/run's last pass); torch.func and torch.amp.GradScaler("cuda") need 2.3
        "torchvision>=0.19",
        "openai-clip>=1.0",
        "setuptools<81",  # clip imports pkg_resources, which setuptools 81 removes
        "yacs",
        "tabulate",
        "tqdm",
        "ftfy",
        "regex",
        "pillow",
        "scipy",
        "numpy",
        "pyyaml",
        "tensorboard",  # the built-in runtime writes Dassl's events under output_dir/tensorboard
        "submitit>=1.5,<2",  # --executor slurm; the dry run calls the function submitit writes sbatch files with
    ],
    extras_require={
        "test": ["pytest>=7", "matplotlib", "ruff"],  # matplotlib: the figure is tested too
        "plot": ["matplotlib"],  # python -m tools.tables --figure
        # What `import dassl` needs besides the above; Dassl.pytorch itself is not on PyPI (see the README).
        "dassl": ["gdown", "scikit-learn", "wilds"],
    },
)
