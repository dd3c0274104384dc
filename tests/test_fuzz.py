"""A bounded, seeded slice of the fuzzer (tests/fuzz): no hang, crash, traceback or bad result.

Mutated WAV/FLAC/MP3/Ogg files, random arrays, sample rates and options through identify,
embed, predict and the CLI, each case in a worker subprocess with a timeout. A longer run is
`python tests/fuzz/run.py --cases N --seed S`.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))

import run as fuzz_run  # noqa: E402

import harness  # noqa: E402

SLICE_CASES, SLICE_SEED = 150, 15  # about a minute on 2 cores


def test_a_fuzz_slice_gives_only_clear_errors_and_sound_results():
    report = fuzz_run.fuzz(SLICE_CASES, SLICE_SEED, workers=2, timeout=60, quiet=True)
    assert sum(report.counts.values()) == SLICE_CASES
    found = "\n".join(f"{f['outcome']}: {f['case'].describe()}\n  {f['detail']}" for f in report.failures)
    assert not report.failures, found
    assert report.counts["result"] >= SLICE_CASES // 5 and report.counts["clear error"] >= SLICE_CASES // 5


def test_the_harness_tells_a_hang_and_a_crash_from_an_error(tmp_path):
    """The classification itself: a case that sleeps past the timeout, one that kills its worker."""
    models = {"ecapa": str(harness.TESTS / "fixtures" / "ecapa" / "voxlingua107_tiny")}
    hang = harness.Case(0, "identify", "ecapa", {"array": {"sleep": 30}})
    crash = harness.Case(1, "identify", "ecapa", {"array": {"abort": True}})
    error = harness.Case(2, "identify", "ecapa", {"file": str(tmp_path / "missing.wav"), "as": "path", "how": "missing"})
    report = harness.run_cases([hang, crash, error], models, workers=1, timeout=5)
    outcomes = {f["case"].index: f["outcome"] for f in report.failures}
    assert outcomes == {0: "hang", 1: "crash"} and report.counts["clear error"] == 1
