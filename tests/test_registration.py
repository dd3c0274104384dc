"""Importing mlx_audio_lid teaches mlx-audio's own loaders our model types, and breaks none of theirs.

The round trip through mlx-audio's loaders, for every family, is in test_contract.py.
"""

import subprocess
import sys

import pytest


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("first", ["mlx_audio_lid", "mlx_audio.lid"])
def test_types_are_registered_whichever_is_imported_first(first):
    """Registration waits for mlx-audio's loader module rather than importing MLX itself."""
    second = "mlx_audio.lid" if first == "mlx_audio_lid" else "mlx_audio_lid"
    out = run_python(
        "import sys\n"
        f"import {first}\n"
        "print('mlx.core' in sys.modules)\n"
        f"import {second}, mlx_audio_lid.registry as r, mlx_audio.lid.utils as u\n"
        "print(all(u.MODEL_REMAPPING[t] == t for t in r.model_types()))\n"
        "print(all(sys.modules['mlx_audio.lid.models.' + f.model_type] is f.package for f in r.FAMILIES))\n"
    )
    assert out.split() == [str(first == "mlx_audio.lid"), "True", "True"]


def test_mlx_audio_own_tests_pass_with_plugin_imported():
    """A sample of mlx-audio's own suite (its LID models, model-type resolution) still passes."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "mlx_audio_lid", "-p", "no:cacheprovider",
         "--pyargs", "mlx_audio.lid.tests.test_lid", "mlx_audio.tests.test_model_resolution"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
