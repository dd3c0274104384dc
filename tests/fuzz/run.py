"""Run the fuzzer: `python tests/fuzz/run.py --cases N --seed S [--workers W] [--timeout T] [--save DIR]`.

Prints the outcome counts (overall and per target), the commonest messages per outcome, and
every failing case (bad result, traceback, crash, hang); `--save DIR` keeps the failing cases
as pickles with their files, and `--replay FILE` runs one saved case again in a fresh worker.
Exit status 1 when any case failed.
"""

import argparse
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def prepare(folder: Path) -> dict:
    """Seed files and the two tiny models -> {"ecapa": folder, "mms": folder}; returns the seeds too."""
    (folder / "seeds").mkdir()
    seeds = harness.write_seed_files(folder / "seeds")
    models = {"ecapa": str(harness.TESTS / "fixtures" / "ecapa" / "voxlingua107_tiny"),
              "mms": str(harness.write_tiny_mms(folder / "mms"))}
    return seeds, models


def fuzz(cases: int, seed: int, workers: int = 2, timeout: float = 30.0, save=None, quiet=False):
    with tempfile.TemporaryDirectory(prefix="mlx_audio_lid-fuzz-") as scratch:
        folder = Path(scratch)
        seeds, models = prepare(folder)
        (folder / "cases").mkdir()
        made = harness.make_cases(cases, seed, seeds, folder / "cases")

        def progress(report):
            done = sum(report.counts.values())
            if not quiet and (done % 100 == 0 or done == len(made)):
                print(f"  {done}/{len(made)} cases, {report.seconds or 0:.0f} s: {dict(report.counts)}", file=sys.stderr)

        start = time.monotonic()
        report = harness.run_cases(made, models, workers, timeout, progress)
        report.seconds = time.monotonic() - start
        if save:
            keep(report, Path(save))
    return report


def keep(report, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for failure in report.failures:
        case = failure["case"]
        if "file" in case.source:
            copy = folder / Path(case.source["file"]).name
            shutil.copy(case.source["file"], copy)
            case.source["file"] = str(copy)
        (folder / f"case{case.index:06d}.pickle").write_bytes(pickle.dumps({"failure": failure}))


def print_report(report, cases: int, seed: int) -> None:
    print(f"{cases} cases, seed {seed}, {report.seconds:.0f} s")
    print("| outcome | cases |\n|---|---|")
    for outcome in harness.OUTCOMES:
        print(f"| {outcome} | {report.counts.get(outcome, 0)} |")
    targets = sorted({target for target, _ in report.by_target})
    print("\n| target | " + " | ".join(harness.OUTCOMES) + " |\n" + "|---" * (len(harness.OUTCOMES) + 1) + "|")
    for target in targets:
        print(f"| {target} | " + " | ".join(str(report.by_target.get((target, o), 0)) for o in harness.OUTCOMES) + " |")
    print("\ncommonest messages:")
    for (outcome, words), count in report.messages.most_common(25):
        print(f"  {count:5d}  {outcome}: {words}")
    for failure in report.failures:
        print(f"\n{failure['outcome']}: {failure['case'].describe()}\n  {failure['detail']}")


def replay(path: Path, timeout: float) -> None:
    """One saved case in a fresh worker, with the tiny models made again (the same seeds)."""
    case = pickle.loads(path.read_bytes())["failure"]["case"]
    print(case.describe())
    with tempfile.TemporaryDirectory(prefix="mlx_audio_lid-fuzz-") as scratch:
        _, models = prepare(Path(scratch))
        worker = harness.Worker(models)
        start = time.monotonic()
        worker.start(case, timeout)
        print(worker.finish(), f"after {time.monotonic() - start:.1f} s")
        worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a case may take before it counts as a hang")
    parser.add_argument("--save", help="folder for the failing cases")
    parser.add_argument("--replay", help="run one saved case again")
    args = parser.parse_args()
    if args.replay:
        replay(Path(args.replay), args.timeout)
        return 0
    report = fuzz(args.cases, args.seed, args.workers, args.timeout, args.save)
    print_report(report, args.cases, args.seed)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
