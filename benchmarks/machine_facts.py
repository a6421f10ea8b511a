"""What the benchmark scripts report about the machine, in one place.

Imports nothing heavy at the top: the scripts set the thread variables before NumPy loads BLAS.
"""

from __future__ import annotations

import os

# The variables BLAS (OpenBLAS, MKL) and OpenMP read for their thread counts, once, at load time.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_threads(threads: int) -> None:
    """Ask BLAS and OpenMP for ``threads`` threads; call it before NumPy is imported."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def optional_torch(threads: int | None, without: str, skip: bool = False):
    """The ``torch`` module with ``threads`` intra-op threads (None or 0: its default), or None
    when ``skip`` is set or PyTorch is not installed (then it prints what is left out,
    ``without``)."""
    if skip:
        return None
    try:
        import torch
    except ImportError:
        print(f"PyTorch is not installed (`make torch`): {without}.\n")
        return None
    if threads:
        torch.set_num_threads(threads)
    return torch


def blas_build() -> str:
    """The BLAS NumPy was built with, e.g. ``scipy-openblas 0.3.31.188.0``."""
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy: no mode="dicts"
        return "unknown"


def blas_name() -> str:
    """The BLAS in use with its thread count when threadpoolctl is there, else the build's."""
    try:
        from threadpoolctl import threadpool_info  # not a dependency: used if it is there

        info = [f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
                for p in threadpool_info() if p.get("user_api") == "blas"]
        if info:
            return ", ".join(info)
    except ImportError:
        pass
    return blas_build()
