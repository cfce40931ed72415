"""Thread setup for the trainers; import before torch.

Debian's torch 1.13 calls the system BLAS (OpenBLAS, pthreads), which starts its own thread pool beside torch's
OpenMP one: with both at 2 threads on 2 cores they fight, and a training step is ~1.4× slower than with the BLAS
holding the cores and torch's own elementwise kernels on one thread (measured: 8 × 256 tokens forward+backward,
2.6 s vs 3.8 s). A torch built with MKL (pip wheels) threads its BLAS through torch's pool instead."""
import os
import sys


def threads_arg(default: int = 2) -> int:
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return default


def setup(n: int) -> None:
    """Before `import torch`: hand OpenBLAS the cores; after it, call `torch_threads(n)`."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(n))


def torch_threads(torch, n: int) -> None:
    torch.set_num_threads(n if "BLAS_INFO=mkl" in torch.__config__.show() else 1)


setup(threads_arg())
