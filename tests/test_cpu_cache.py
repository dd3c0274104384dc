"""The first model raises MLX's CPU-only buffer cache from 32 MB, and keeps a limit the user set."""

import subprocess
import sys

import pytest

PROBE = """
import mlx_audio_lid
import mlx.core as mx
{user}
from benchmarks.common import random_model
from references import sizes
random_model(sizes.tiny_ecapa())
limit = mx.set_cache_limit(0)
memory = mx.set_memory_limit(1 << 30)
print(limit, memory)
"""


def probe(user: str = ""):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", PROBE.format(user=user)], capture_output=True, text=True,
                          cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr
    return [int(n) for n in done.stdout.split()]


@pytest.fixture(scope="module")
def cpu_only():
    from mlx_audio_lid import cpu_cache

    if not cpu_cache._cpu_only_build():
        pytest.skip("MLX's CPU-only build (Linux mlx-cpu) only: Metal and CUDA builds keep their own cache limits")


def test_first_model_sets_a_quarter_of_the_memory_limit(cpu_only):
    limit, memory = probe()
    assert limit == memory // 4 > 32 << 20


def test_a_limit_the_user_set_is_kept(cpu_only):
    limit, _ = probe("mx.set_cache_limit(123456789)")
    assert limit == 123456789
