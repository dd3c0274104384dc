"""A larger buffer cache for MLX's CPU-only build, so that a batch's activations are reused, not re-faulted.

MLX keeps freed buffers for reuse up to its cache limit, which its CPU-only build (Linux's
`mlx-cpu`) sets to 32 MB. A Whisper base batch of 4 clips frees about 1 GB of activations per
forward pass, so each pass returned them to the OS and faulted them in again: 220-280 thousand
page faults and 4.2-4.4 s a pass, against 5 thousand and 3.4-3.7 s with the limit raised (2-core
CPU). Peak memory does not grow: the cache holds buffers the process already had at its peak.
A limit the user set (anything but MLX's 32 MB) is kept; `mx.clear_cache()` returns the memory.
"""

import functools

import mlx.core as mx

MLX_CPU_DEFAULT = 32 << 20


def _cpu_only_build() -> bool:
    cuda = getattr(mx, "cuda", None)
    return not mx.metal.is_available() and not (cuda is not None and cuda.is_available())


@functools.lru_cache(maxsize=None)
def install() -> None:
    """Once per process: a quarter of MLX's memory limit as the cache limit on a CPU-only build."""
    if not _cpu_only_build():
        return
    memory_limit = mx.set_memory_limit(MLX_CPU_DEFAULT)  # MLX has no getter: set, read the old one back...
    mx.set_memory_limit(memory_limit)  # ...and restore it
    previous = mx.set_cache_limit(memory_limit // 4)
    if previous != MLX_CPU_DEFAULT:
        mx.set_cache_limit(previous)
