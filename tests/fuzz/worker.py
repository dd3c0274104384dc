"""A fuzz worker: loads the tiny models once, then runs the cases it is sent, one reply for each.

Reads {"ecapa": folder, "mms": folder}, answers "ready", then for each pickled `harness.Case` on
stdin writes {"outcome", "detail"} on its own copy of stdout (fd 1 itself is sent to /dev/null,
so nothing a library prints can corrupt the replies). Exits when stdin closes.
"""

import builtins
import csv
import io
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import harness  # noqa: E402
import numpy as np  # noqa: E402

import mlx_audio_lid as lid  # noqa: E402
from mlx_audio_lid import cli  # noqa: E402
import mlx.core as mx  # noqa: E402  (after mlx_audio_lid, which sets up the CPU BLAS first)


class BadResult(Exception):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise BadResult(what)


# -- inputs ----------------------------------------------------------------------------------------
def build_array(spec: dict):
    if "sleep" in spec:  # the harness's own test (test_fuzz.py): a case that hangs
        time.sleep(spec["sleep"])
    if "abort" in spec:  # ... and one that kills its worker with a signal
        os.abort()
    rng = np.random.default_rng(spec["seed"])
    n = spec["length"]
    t = np.arange(n) / 16000
    signal = {
        "speech": lambda: np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.1 * rng.standard_normal(n),
        "noise": lambda: rng.standard_normal(n),
        "sine": lambda: np.sin(2 * np.pi * 440 * t),
        "zeros": lambda: np.zeros(n),
        "constant": lambda: np.ones(n),
    }[spec["signal"]]() * spec["amplitude"]
    if spec["inject"] != "none" and n:
        value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "denormal": 1e-310}[spec["inject"]]
        signal[rng.integers(0, n, max(1, n // 100))] = value
    dtype = spec["dtype"]
    with np.errstate(all="ignore"):
        if dtype in ("object", "str"):
            samples = signal.astype(object if dtype == "object" else str)
        elif np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            samples = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True) if spec["signal"] == "noise" \
                else np.clip(np.nan_to_num(signal), info.min, info.max).astype(dtype)
        else:
            samples = signal.astype(dtype)
    samples = {
        "1d": lambda: samples, "scalar": lambda: samples[:1].reshape(()) if n else np.float32(0.5),
        "row": lambda: samples[None], "two rows": lambda: np.stack([samples, samples[::-1]]),
        "columns": lambda: np.stack([samples, samples], axis=1), "3d": lambda: samples.reshape(1, 1, -1),
        "list": lambda: [samples, samples[: n // 2]],
    }[spec["shape"]]()
    if spec["mlx"] and not isinstance(samples, list) and samples.dtype.kind in "fiub":
        samples = mx.array(samples)
    return samples


def source_of(case):
    if "array" in case.source:
        return build_array(case.source["array"])
    path = case.source["file"]
    return path if case.source["as"] == "path" else Path(path).read_bytes()


# -- checks of what came back -----------------------------------------------------------------------
def check_prediction(prediction, model) -> None:
    probs = list(prediction.probs.values())
    expect(all(math.isfinite(p) and -1e-6 <= p <= 1 + 1e-6 for p in probs), f"probabilities out of range: {probs[:5]}")
    expect(math.isfinite(prediction.probability) and 0 <= prediction.probability <= 1 + 1e-6, "probability out of range")
    if probs:
        expect(abs(sum(probs) - 1) < 1e-3, f"probabilities sum to {sum(probs)}")
    expect(prediction.language in model.labels or prediction.language == "und", f"unknown language {prediction.language!r}")
    expect(math.isfinite(prediction.duration) and 0 <= prediction.speech <= prediction.duration + 1e-6, "bad duration/speech")
    json.dumps(prediction.to_dict(), allow_nan=False)  # ValueError here would be a NaN in the record
    for segment in prediction.segments or []:
        expect(0 <= segment.start < segment.end <= prediction.duration + 1e-6, f"bad segment {segment}")


def run_api(case, model) -> None:
    source = source_of(case)
    if case.target == "identify":
        result = lid.identify(model, source, sample_rate=case.sample_rate, **case.options)
        for prediction in result if isinstance(result, list) else [result]:
            check_prediction(prediction, model)
    elif case.target == "embed":
        vectors = lid.embed(model, source, sample_rate=case.sample_rate, **case.options)
        expect(isinstance(vectors, np.ndarray) and vectors.ndim in (1, 2) and np.isfinite(vectors).all(), "bad embedding")
    else:
        ranked = model.predict(source, **case.options)
        expect(all(label in model.labels and math.isfinite(p) and 0 <= p <= 1 + 1e-6 for label, p in ranked), f"bad predict {ranked[:3]}")


def run_cli(case, folder: str) -> str:
    """The CLI in this process, its stdout a strict UTF-8 stream as a terminal's is."""
    stdout, captured = sys.stdout, io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    sys.stdout = captured
    try:
        code = cli.main(["identify", case.source["file"], "--model", folder, *case.argv])
    except SystemExit as stop:  # argparse refusing an option
        code = stop.code
    finally:
        sys.stdout = stdout
    captured.flush()
    expect(code in (0, 1, 2), f"exit status {code!r}")
    if code == 2:
        return "clear error"
    output = captured.buffer.getvalue().decode("utf-8")
    if "--output" in case.argv:
        output = Path(case.argv[case.argv.index("--output") + 1]).read_text(encoding="utf-8")
    fmt = case.argv[case.argv.index("--format") + 1] if "--format" in case.argv else "text"
    records = parse_records(output, fmt)
    expect(len(records) >= 1, f"no record in {output[:200]!r}")
    errors = [r["error"] for r in records if r.get("error")]
    for error in errors:
        name = error.split(":", 1)[0]
        if isinstance(getattr(builtins, name, None), type) or name.endswith("Error"):
            raise RuntimeError(f"the CLI caught a traceback: {error}")
    return "clear error" if errors else "result"


def parse_records(output: str, fmt: str) -> list:
    if fmt == "json":
        return json.loads(output)
    if fmt == "jsonl":
        return [json.loads(line) for line in output.splitlines()]
    if fmt == "csv":
        return [row for row in csv.DictReader(io.StringIO(output)) if row["kind"] == "file"]
    return [{"error": line.split(": error: ", 1)[1]} if ": error: " in line else {} for line in output.splitlines()
            if not line.startswith("  ")]


def run(case, models: dict, folders: dict) -> dict:
    path = case.source.get("file", "\0")
    try:
        if case.target == "cli":
            return {"outcome": run_cli(case, folders[case.model]), "detail": ""}
        run_api(case, models[case.model])
        return {"outcome": "result", "detail": ""}
    except BadResult as error:
        return {"outcome": "bad result", "detail": str(error)}
    except (ValueError, OSError) as error:
        text = " ".join(str(error).split())
        return {"outcome": "clear error" if text else "traceback", "detail": text.replace(path, "<file>")}
    except Exception as error:  # noqa: BLE001  (the point: anything else is a finding)
        frames = traceback.format_exception(type(error), error, error.__traceback__)
        return {"outcome": "traceback", "detail": f"{type(error).__name__}: {error}\n{''.join(frames[-4:])}"}


def main() -> None:
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    folders = harness.receive(requests)
    models = {name: lid.load(folder) for name, folder in folders.items()}
    harness.send(replies, "ready")
    while True:
        case = harness.receive(requests)
        if case is None:
            return
        harness.send(replies, run(case, models, folders))


if __name__ == "__main__":
    main()
