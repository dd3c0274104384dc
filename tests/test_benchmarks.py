"""The benchmark scripts run end to end in their reduced form (tiny models; no timing asserted),
as modules from the repository root, as their docstrings say to run them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(name, *args, tmp_path):
    out = tmp_path / f"{name}.json"
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--size", "tiny", "--repeats", "1",
                             "--json", str(out), *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


def test_bench_mms_reduced(tmp_path):
    report, stdout = run_script("bench_mms", "--cases", "1 s x 1", tmp_path=tmp_path)
    names = {row["implementation"] for row in report["rows"]}
    assert names == {"MLX eager float32", "MLX compiled float32", "PyTorch float32"}
    assert "Machine:" in stdout and "| MLX eager float32 | 1 s x 1 |" in stdout
    assert all(float(row["median ms"]) > 0 for row in report["rows"])


def test_bench_ecapa_reduced_with_long_recording(tmp_path):
    report, _ = run_script("bench_ecapa", "--no-reference", "--long-minutes", "0.2", "--long-batches", "2,8",
                           tmp_path=tmp_path)
    cases = {row["case"] for row in report["rows"]}
    assert cases == {"1 s x 1", "mixed 0.5-2 s x 4", "0.2 min recording, batches of 2", "0.2 min recording, batches of 8"}


def test_profile_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.profile_models", "--model", "ecapa",
                             "--seconds", "1", "--repeats", "1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| attentive statistics |" in result.stdout


def test_bench_whisper_reduced(tmp_path):
    report, stdout = run_script("bench_whisper", "--batch", "2", "--quantized", tmp_path=tmp_path)
    names = {row["implementation"] for row in report["rows"]}
    assert {"MLX float32", "MLX 8-bit + float32", "faster-whisper float32 detect_language",
            "faster-whisper int8 batched"} <= names
    assert "| MLX float32 | 2 clips |" in stdout and all(float(row["median ms"]) > 0 for row in report["rows"])
    # the same tiny network on both sides: float32 probabilities agree, the check is against CTranslate2's own run
    assert report["agreement"]["faster-whisper float32"]["max_delta"] == 0
    assert report["agreement"]["MLX float32"]["max_delta"] < 1e-4 and report["agreement"]["MLX float32"]["top1_agrees"]


def test_profile_identify_splits_the_call(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.profile_identify", "--model", "ecapa", "--minutes", "0.2",
                             "--dtype", "float32", "--repeats", "1", "--top", "5"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| network (" in result.stdout and "| everything else" in result.stdout
    assert "Ordered by: internal time" in result.stdout


def test_timed_interleaved_alternates_rounds_and_drops_only_tolerated_failures():
    from benchmarks.common import timed_interleaved

    calls = []

    def failing():
        raise RuntimeError("no CUDA")

    runs = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b"), "broken": failing}
    timings, failed = timed_interleaved(runs, 3, tolerate=lambda key, error: key == "broken")
    # first call and warm-up of each, then rounds a b / b a / a b
    assert calls == ["a", "a", "b", "b", "a", "b", "b", "a", "a", "b"]
    assert set(timings) == {"a", "b"} and timings["a"]["repeats"] == 3
    assert isinstance(failed["broken"], RuntimeError)
    with pytest.raises(RuntimeError, match="no CUDA"):
        timed_interleaved(runs, 1)
