"""On Linux, importing mlx_audio_lid first puts an optimized BLAS under MLX's CPU build."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MLX's Linux CPU build only")

PROBE = """
import time, numpy as np
{first}
import mlx.core as mx
from mlx_audio_lid import cpu_blas
rng = np.random.default_rng(0)
a, b = rng.standard_normal((256, 1024), np.float32), rng.standard_normal((1024, 512), np.float32)
out = np.array(mx.array(a) @ mx.array(b))
print(cpu_blas.active, float(np.abs(out - a.astype(np.float64) @ b).max()))
"""


def run_probe(first: str, env_extra=None):
    import os

    env = dict(os.environ, **(env_extra or {}))
    result = subprocess.run([sys.executable, "-W", "always", "-c", PROBE.format(first=first)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    active, error = result.stdout.split()
    return active, float(error), result.stderr


def test_imported_first_loads_an_optimized_blas_with_the_same_results():
    active, error, _ = run_probe("import mlx_audio_lid")
    assert active != "None" and "lib" in active  # mkl on x86_64 (a dependency), else system OpenBLAS
    assert error < 1e-3  # float32 rounding of 1024-term sums of unit normals


def test_off_switch_keeps_mlx_blas():
    active, error, _ = run_probe("import mlx_audio_lid", {"MLX_AUDIO_LID_BLAS": "off"})
    assert active == "None" and error < 1e-3


def test_imported_after_mlx_warns_how_to_fix():
    active, _, stderr = run_probe("import mlx.core\nimport mlx_audio_lid", {"LD_PRELOAD": ""})
    assert active == "None"
    assert "import mlx_audio_lid first" in stderr


def test_every_candidate_here_loads_with_the_same_results():
    """Each library cpu_blas would pick on some machine (the system OpenBLAS, the mkl wheel), forced."""
    from mlx_audio_lid import cpu_blas

    import platform

    found = cpu_blas._candidates()
    if not found and platform.machine() != "x86_64":
        pytest.skip("no system OpenBLAS on this Linux machine, and the mkl wheel is for x86_64 only")
    assert found, "no optimized BLAS on this Linux machine: the mkl wheel is a dependency on x86_64"
    for path in found:
        active, error, _ = run_probe("import mlx_audio_lid", {"MLX_AUDIO_LID_BLAS": path})
        assert active == path and error < 1e-3
