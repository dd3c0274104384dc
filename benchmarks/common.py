"""What the benchmarks share: the machine they ran on, timing, tables, random models at the
published sizes, and the one loop both speed benchmarks run (`run_speed_benchmark`).

Run every script from the repository root as a module (`python -m benchmarks.bench_mms`), so
that `references` (the reference side, shared with the tests) imports as a package.
"""

import abc
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    import mlx.core as mx

    packages = []
    for name in ("mlx", "mlx-audio", "torch", "transformers", "speechbrain"):
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    from mlx_audio_lid import cpu_blas

    blas = cpu_blas.active or os.environ.get("LD_PRELOAD", "") or "MLX's own"
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
        f"MLX device {mx.default_device()}; BLAS: {blas}; " + ", ".join(packages)
    )


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def timed(run, sync=lambda: None, repeats: int = 5) -> dict:
    """First call (compilation, caches) and then `repeats` warm calls, in seconds."""
    import statistics
    import time

    start = time.perf_counter()
    run()
    sync()
    first = time.perf_counter() - start
    run()  # one more warm-up: some backends finish tuning on the second call
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return {"first_s": first, "median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def timed_interleaved(runs: dict, repeats: int, sync=lambda: None, tolerate=lambda key, error: False, log=None):
    """key -> `timed`'s dict for runs that are compared with each other, and key -> the error
    that dropped a run (only where `tolerate(key, error)`; anything else is raised).

    Each run's first call and one warm-up, one run after another; then `repeats` rounds that
    time every run once, in reverse order every other round. Timed one run after another
    instead, a run's median is the machine's state during its own minutes: on the 2-core CPU
    here that drifts 10-20 % over a benchmark (the same code measured 0.88 and 1.23 of
    faster-whisper in two runs), and falls on whichever side ran then. Interleaved, every
    round meets the drift on every side, and the ratio of medians is a ratio in one state.
    """
    import statistics
    import time

    def call(run):
        start = time.perf_counter()
        run()
        sync()
        return time.perf_counter() - start

    firsts, failed = {}, {}
    for key, run in runs.items():
        if log:
            log(f"first calls of {key}")
        try:
            firsts[key] = call(run)
            call(run)  # the warm-up: some backends finish tuning on the second call
        except Exception as error:
            if not tolerate(key, error):
                raise
            failed[key] = error
    keys = list(firsts)
    times = {key: [] for key in keys}
    for round_ in range(repeats):
        if log:
            log(f"round {round_ + 1} of {repeats}")
        for key in keys if round_ % 2 == 0 else reversed(keys):
            times[key].append(call(runs[key]))
    timings = {key: {"first_s": firsts[key], "median_s": statistics.median(t), "min_s": min(t), "repeats": repeats}
               for key, t in times.items()}
    return timings, failed


def mlx_peak_memory(run) -> float:
    """Peak MLX memory (GB) during one call of `run`."""
    import mlx.core as mx

    mx.clear_cache()
    mx.reset_peak_memory()
    run()
    return mx.get_peak_memory() / 1e9


def torch_sync_and_peak(device: str):
    """(sync function, peak-memory function in GB or None) for a torch device."""
    import torch

    if device.startswith("cuda"):
        def peak(run):
            torch.cuda.reset_peak_memory_stats()
            run()
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 1e9
        return torch.cuda.synchronize, peak
    return (lambda: None), None


def write_outputs(rows, header, title, json_path=None, plot_path=None, machine=None):
    """Print the table; optionally write the rows as JSON and a bar plot of median times."""
    import json

    print(f"{title}\n\nMachine: {machine or machine_description()}\n")
    print(markdown_table(header, [[row.get(h, "") for h in header] for row in rows]))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"title": title, "machine": machine or machine_description(), "rows": rows}, f, indent=1)
    if plot_path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cases = list(dict.fromkeys(r["case"] for r in rows))
        impls = list(dict.fromkeys(r["implementation"] for r in rows))
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cases)), 4))
        width = 0.8 / len(impls)
        for i, impl in enumerate(impls):
            values = [next((float(r["median ms"]) for r in rows if r["case"] == c and r["implementation"] == impl), 0) for c in cases]
            ax.bar([j + i * width for j in range(len(cases))], values, width, label=impl)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cases))], cases)
        ax.set_ylabel("median ms (lower is better)")
        ax.set_title(title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(plot_path, dpi=120)


def windows(recording, window: int, hop: int):
    """The fixed windows a reference implementation would run: every hop, the tail included."""
    starts = list(range(0, max(1, len(recording) - window + hop), hop))
    return [recording[s : s + window] for s in starts if len(recording[s : s + window]) > 0]


def long_recording_rows(model, recording, reference_batches, reference_name: str, dtype_name: str,
                        minutes: float, batch_size: int, repeats: int, sync) -> list:
    """Rows for one long recording: identify(segments=True) here, the same windows batched there.

    `reference_batches(windows_list, batch_size)` runs the reference (None: this package only).
    """
    import mlx_audio_lid as lid
    from mlx_audio_lid import registry
    from mlx_audio_lid.timeline import window_sizes

    window, hop = window_sizes(registry.family_of(model))
    timings = {"MLX identify(segments=True)": timed(
        lambda: lid.identify(model, recording, segments=True, batch_size=batch_size,
                             vad="energy"), repeats=repeats)}  # synthetic speech: Silero finds none
    if reference_batches is not None:
        pieces = windows(recording, window, hop)
        timings[f"{reference_name}, same windows"] = timed(lambda: reference_batches(pieces, batch_size), sync, repeats)
    base = timings.get(f"{reference_name}, same windows")
    return [{"implementation": f"{name} {dtype_name}", "case": f"{minutes:g} min recording, batches of {batch_size}",
             "median ms": f"{t['median_s'] * 1e3:.0f}", "min ms": f"{t['min_s'] * 1e3:.0f}",
             "first call ms": f"{t['first_s'] * 1e3:.0f}", "peak GB": "", "clips/s": "",
             f"x {reference_name}": f"{t['median_s'] / base['median_s']:.2f}" if base else ""}
            for name, t in timings.items()]


def delta_to_first_dtype(output, case: str, first_outputs: dict) -> float:
    """Max |Δ| of this dtype's logits against the first dtype run for the case (float32)."""
    first_outputs.setdefault(case, output)
    return float(abs(output - first_outputs[case]).max())


def case_rows(runs: dict, case: str, reference_name: str, clips: int, sync, reference_peak, repeats: int,
              delta: float) -> list:
    """Time each implementation of one case -> table rows, with ratios to `reference_name`.

    `runs` maps names to callables; the reference's are synchronised with `sync` and its peak
    memory read with `reference_peak(run)` (None where it cannot be read); MLX's peak memory
    is MLX's own. `delta` is this case's logit difference against the first dtype.
    """
    import sys

    timings = {}
    for name, run in runs.items():
        print(f"  timing {name} on {case}", file=sys.stderr, flush=True)
        is_reference = name == reference_name
        timings[name] = timed(run, sync if is_reference else (lambda: None), repeats)
        if is_reference:
            timings[name]["peak_gb"] = reference_peak(run) if reference_peak else None
        else:
            timings[name]["peak_gb"] = mlx_peak_memory(run)
    base = timings.get(reference_name)
    return [{
        "implementation": name, "case": case,
        "median ms": f"{t['median_s'] * 1e3:.1f}", "min ms": f"{t['min_s'] * 1e3:.1f}",
        "first call ms": f"{t['first_s'] * 1e3:.0f}",
        "peak GB": "" if t["peak_gb"] is None else f"{t['peak_gb']:.2f}",
        f"x {reference_name.split()[0]}": f"{t['median_s'] / base['median_s']:.2f}" if base else "",
        "clips/s": f"{clips / t['median_s']:.0f}",
        "max abs Δ logit vs first dtype": f"{delta:.1e}" if name.startswith("MLX") else "",
    } for name, t in timings.items()]


def benchmark_arguments(description: str):
    """The command line both benchmark scripts share."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--dtypes", default="float32", help="comma-separated: float32,float16,bfloat16")
    parser.add_argument("--torch-device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-reference", action="store_true", help="time this package only")
    parser.add_argument("--cases", help="comma-separated subset of the case names")
    parser.add_argument("--eager-only", action="store_true",
                        help="skip the compiled rows (a cold CUDA kernel cache compiles for minutes per shape)")
    parser.add_argument("--long-minutes", type=float, default=0,
                        help="also time a recording this long through identify(segments=True)")
    parser.add_argument("--long-batches", type=lambda text: [int(v) for v in text.split(",")], default=[8],
                        help="comma-separated batch sizes for the long recording, the same on both sides (default 8)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    return parser.parse_args()


def random_model(config: dict, dtype: str = "float32"):
    """A model of `config`'s family with MLX's random initial weights, in eval mode."""
    import mlx.core as mx

    from mlx_audio_lid import registry
    from mlx_audio_lid.loading import DTYPES

    package = registry.family(config["model_type"]).package
    model = package.Model(package.ModelConfig.from_dict(config))
    model.set_dtype(DTYPES[dtype])
    mx.eval(model.parameters())
    model.eval()
    return model


def save_random_model(config: dict, folder: Path) -> Path:
    """`random_model(config)` as an MLX folder that `load` (and so a server or a Ray worker) reads."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True)
    random_model(config).save_weights(str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


class Reference(abc.ABC):
    """The reference implementation's side of a speed benchmark (transformers, SpeechBrain) on a torch device."""

    name: str  # e.g. "PyTorch", as the table's ratio column names it

    def __init__(self, torch_device: str):
        self.device = torch_device
        self.sync, self.peak = torch_sync_and_peak(torch_device)

    @abc.abstractmethod
    def set_dtype(self, dtype_name: str) -> None:
        """Compute in this dtype from now on."""

    @abc.abstractmethod
    def run_for(self, clips, waveforms, lengths, dtype_name: str):
        """A callable that runs the reference once on this case's clips (inputs prepared beforehand)."""

    @abc.abstractmethod
    def batches(self, pieces, batch_size: int, dtype_name: str) -> None:
        """Run a long recording's windows in batches of `batch_size`."""


def run_speed_benchmark(args, ours, cases: dict, clips_for, reference=None, *, header, title, long_recording=None):
    """Per dtype and case: this package eager and compiled, and the reference; then the table.

    `cases` maps a case name to clip lengths in seconds, `clips_for(seconds)` makes the clips,
    `reference` is a `Reference` (None: this package only), `long_recording()` makes a
    recording for `--long-minutes`.
    """
    import sys

    import mlx.core as mx
    import numpy as np

    from mlx_audio_lid.identification import pad_batch
    from mlx_audio_lid.loading import DTYPES

    sync, reference_peak = (reference.sync, reference.peak) if reference else ((lambda: None), None)
    name = reference.name if reference else "reference"
    rows, first_outputs = [], {}
    for dtype_name in args.dtypes.split(","):
        ours.set_dtype(DTYPES[dtype_name])
        if reference:
            reference.set_dtype(dtype_name)
        compiled = ours.compiled_forward()  # the package's compiled path; made again after set_dtype
        for case, seconds in cases.items():
            if args.cases and case not in args.cases.split(","):
                continue
            clips = clips_for(seconds)
            waveforms, lengths = pad_batch(clips)
            padded = len(set(seconds)) > 1
            mx.eval(waveforms, lengths)
            runs = {f"MLX eager {dtype_name}": lambda: mx.eval(ours(waveforms, lengths))}
            if not args.eager_only:
                runs[f"MLX compiled {dtype_name}"] = lambda: mx.eval(compiled(waveforms, lengths, padded))
            if reference:
                runs[f"{name} {dtype_name}"] = reference.run_for(clips, waveforms, lengths, dtype_name)
            delta = delta_to_first_dtype(np.array(ours(waveforms, lengths).astype(mx.float32)), case, first_outputs)
            rows += case_rows(runs, case, f"{name} {dtype_name}", len(seconds), sync, reference_peak, args.repeats, delta)
            print(f"done: {dtype_name} {case}", file=sys.stderr, flush=True)
        if args.long_minutes:
            batches = (lambda pieces, size: reference.batches(pieces, size, dtype_name)) if reference else None
            recording = long_recording()
            for batch_size in args.long_batches:
                rows += long_recording_rows(ours, recording, batches, name, dtype_name, args.long_minutes, batch_size,
                                            max(1, args.repeats // 2), sync)
    write_outputs(rows, header, title, args.json, args.plot)
