"""Fuzzing mlx_audio_lid: mutated audio files, random arrays, rates and options, through the API and CLI.

Cases are made here from a seed (`make_cases`), run in a pool of worker subprocesses
(`worker.py`, each loading the tiny models once) with a timeout per case, and every outcome is
put in one of OUTCOMES. A case is a plain dict (pickled to the worker), so any case can be
replayed alone: `run.py --replay FILE`.
"""

import os
import pickle
import select
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import soundfile

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS.parent))  # the repository root: `references` (tiny models, signals)
OUTCOMES = (
    "clear error",  # a ValueError / OSError (the package's own kinds) with a message
    "result",  # an answer that passed the worker's checks (finite probabilities summing to 1, ...)
    "bad result",  # an answer that did not: NaN, probabilities out of range, a record that is not JSON
    "traceback",  # any other exception (TypeError, IndexError, ...), or a CLI record that carries one
    "crash",  # the worker died (a signal, or an exit status where none is expected)
    "hang",  # no answer within the timeout
)
FAILURES = ("bad result", "traceback", "crash", "hang")

# -- seed media ------------------------------------------------------------------------------------
SEED_FILES = [  # (name, sample rate, channels, soundfile format, subtype)
    ("pcm16.wav", 16000, 1, "WAV", "PCM_16"),
    ("stereo22k.wav", 22050, 2, "WAV", "PCM_16"),
    ("float8k.wav", 8000, 1, "WAV", "FLOAT"),
    ("u8.wav", 11025, 1, "WAV", "PCM_U8"),
    ("pcm24_48k.wav", 48000, 1, "WAV", "PCM_24"),
    ("speech.flac", 16000, 1, "FLAC", "PCM_16"),
    ("stereo44k.flac", 44100, 2, "FLAC", "PCM_16"),
    ("speech.mp3", 22050, 1, "MP3", "MPEG_LAYER_III"),
    ("stereo44k.mp3", 44100, 2, "MP3", "MPEG_LAYER_III"),
    ("speech.ogg", 16000, 1, "OGG", "VORBIS"),
    ("stereo48k.ogg", 48000, 2, "OGG", "VORBIS"),
]


def write_seed_files(folder: Path) -> Dict[str, bytes]:
    """Short speech-like clips (1.2 s) in every format the package decodes itself."""
    from references.signals import speechlike_clips

    out = {}
    for index, (name, rate, channels, fmt, subtype) in enumerate(SEED_FILES):
        voice = speechlike_clips([int(1.2 * 16000)], seed=index)[0]
        t = np.linspace(0, 1.2, int(1.2 * rate), endpoint=False)
        samples = np.interp(t, np.arange(len(voice)) / 16000, voice).astype(np.float32)
        if channels == 2:
            samples = np.stack([samples, 0.5 * samples[::-1]], axis=1)
        soundfile.write(folder / name, samples, rate, format=fmt, subtype=subtype)
        out[name] = (folder / name).read_bytes()
    return out


def write_tiny_mms(folder: Path) -> Path:
    """A tiny MMS-LID-shaped checkpoint in the published transformers layout (needs torch).

    It downsamples 320x like the real conv stack: the plain tiny config's 20x makes a 20 s whole
    pass 16000 frames of attention, minutes on a CPU, which reads as a hang and is no finding.
    """
    sys.path.insert(0, str(TESTS))
    import conversion_sources

    return conversion_sources.tiny_mms(folder, seed=3)


# -- mutations --------------------------------------------------------------------------------------
INTERESTING_INTS = [0, 1, 2, 7, 255, 256, 999, 1000, 16000, 44101, 65535, 383999, 384000, 384001,
                    2**31 - 1, 2**31, 2**32 - 1]
WAV_FIELDS = {"size": (4, 4), "channels": (22, 2), "rate": (24, 4), "byte rate": (28, 4),
              "block align": (32, 2), "bits": (34, 2), "data size": (40, 4)}


def _put_int(data: bytearray, offset: int, width: int, value: int) -> None:
    if offset + width <= len(data):
        data[offset : offset + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")


def mutate(rng: np.random.Generator, data: bytes, other: bytes) -> (bytes, str):
    """One or more random damages to a file's bytes -> (bytes, what was done)."""
    data = bytearray(data)
    done = []
    for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
        kind = str(rng.choice(["bitflip", "header bitflip", "truncate", "header field", "wav field",
                               "splice", "insert", "duplicate", "fill"]))
        n = len(data)
        if kind in ("bitflip", "header bitflip") and n:
            span = min(n, 64) if kind == "header bitflip" else n
            for _ in range(int(rng.integers(1, 17))):
                data[int(rng.integers(span))] ^= 1 << int(rng.integers(8))
        elif kind == "truncate":
            data = data[: int(rng.integers(0, n + 1))]
        elif kind == "header field" and n:
            width = int(rng.choice([1, 2, 4]))
            _put_int(data, int(rng.integers(0, min(n, 64))), width, int(rng.choice(INTERESTING_INTS + [int(rng.integers(2**32))])))
        elif kind == "wav field":
            name = str(rng.choice(list(WAV_FIELDS)))
            offset, width = WAV_FIELDS[name]
            _put_int(data, offset, width, int(rng.choice(INTERESTING_INTS)))
            kind = f"wav {name}"
        elif kind == "splice":
            cut, cut_other = int(rng.integers(0, n + 1)), int(rng.integers(0, len(other) + 1))
            data = data[:cut] + bytearray(other[cut_other:])
        elif kind == "insert":
            at = int(rng.integers(0, n + 1))
            data = data[:at] + bytearray(rng.integers(0, 256, int(rng.integers(1, 2000)), dtype=np.uint8).tobytes()) + data[at:]
        elif kind == "duplicate" and n:
            start = int(rng.integers(n))
            data = data + data[start : start + int(rng.integers(1, 5000))]
        elif kind == "fill" and n:
            start = int(rng.integers(n))
            length = min(n - start, int(rng.integers(1, 4000)))
            data[start : start + length] = bytes([int(rng.choice([0, 255]))]) * length
        done.append(kind)
    return bytes(data), "+".join(done)


# -- arrays, rates, options -------------------------------------------------------------------------
DTYPES = ["float32", "float64", "int16", "int32", "float16", "int8", "int64", "uint8", "uint16", "uint32",
          "bool", "complex64", "object", "str"]  # the first four are what callers pass
AMPLITUDES = [0.5, 1.0, 1e-3, 2.0, 0.0, 1e-38, 1e-10, 1000.0, 32767.0, 2.0**31, 2.0**31 * 1.01, 1e20, 1e30,
              float(np.finfo(np.float32).max)]  # the first four are ordinary
LENGTHS = [0, 1, 2, 100, 399, 400, 640, 641, 4000, 8000, 16000, 24000, 40000]
RATES = ([16000, 16000, 8000, 11025, 22050, 44100, 44101, 48000, 96000, 192000, 383999, 384000, 1000, 16000.0],
         [0, -1, 1, 999, 384001, 10**12, 16000.5, float("nan"), float("inf"), True, None, "16000"])
# Each option's plausible values, then (after the None marker in BAD) its wrong ones.
OPTION_VALUES = {
    "top_k": ([1, 3, 5, 1000], [0, -1, 2.5, True, None]),
    "batch_size": ([1, 2, 8], [0, -3, 2.5]),
    "languages": ([None, "en", "eng,Russian", ["en", "de"]], ["xx", "", ",", "en,,ru", [], 5, [5]]),
    "min_probability": ([None, 0.0, 0.5, 1.0], [-0.1, 1.5, float("nan"), "0.5"]),
    "segments": ([True, False], []),
    "window": ([None, 0.5, 1.0, 3.0], [0.001, 0.0, -1.0, float("nan"), float("inf"), 1e9, "3"]),
    "hop": ([None, 0.25, 1.0], [0.0, float("nan"), 10.0]),
    "max_whole": ([None, 0.0, 1.0, 60.0], [float("nan"), float("inf"), -1.0, "3"]),
    "vad": ([True, False, "energy", None], ["silero?", 3]),
    "vad_threshold_db": ([-50.0, -120.0, 0.0], [10.0, float("nan"), float("inf"), float("-inf")]),
    "allow_partial": ([True, False], []),
}
BAD_OPTION_RATE = 0.1  # the chance that a chosen option gets one of its wrong values
CLI_OPTIONS = {  # plausible values, then wrong ones (chosen at BAD_OPTION_RATE)
    "--top-k": (["1", "5"], ["0", "-1", "x"]), "--batch-size": (["1", "4"], ["0"]),
    "--languages": (["en,ru"], ["xx", ""]), "--min-probability": (["0.5"], ["2", "nan"]),
    "--window": (["1", "3"], ["0.001", "inf", "-2"]), "--hop": (["0.5"], ["0"]),
    "--vad-threshold-db": (["-60"], ["nan"]), "--format": (["text", "json", "jsonl", "csv"], []),
}
CLI_FLAGS = ["--segments", "--no-vad", "--allow-partial"]


def random_array_spec(rng: np.random.Generator) -> dict:
    return {
        "dtype": str(rng.choice(DTYPES, p=_weights(len(DTYPES), heavy=4))),
        "shape": str(rng.choice(["1d"] * 6 + ["scalar", "row", "two rows", "columns", "3d", "list"])),
        "length": int(rng.choice(LENGTHS)),
        "signal": str(rng.choice(["speech", "noise", "sine", "zeros", "constant"])),
        "amplitude": float(rng.choice(AMPLITUDES, p=_weights(len(AMPLITUDES), heavy=4))),
        "inject": str(rng.choice(["none"] * 6 + ["nan", "inf", "-inf", "denormal"])),
        "mlx": bool(rng.random() < 0.2),
        "seed": int(rng.integers(2**31)),
    }


def _weights(count: int, heavy: int) -> np.ndarray:
    """The first `heavy` choices (the plausible ones) ten times as likely as the rest."""
    weights = np.array([10.0] * heavy + [1.0] * (count - heavy))
    return weights / weights.sum()


def random_options(rng: np.random.Generator) -> dict:
    options = {}
    for name, (good, bad) in OPTION_VALUES.items():
        if rng.random() < 0.3:
            values = bad if bad and rng.random() < BAD_OPTION_RATE else good
            options[name] = values[int(rng.integers(len(values)))]
    return options


@dataclass
class Case:
    index: int
    target: str  # identify | embed | predict | cli
    model: str  # ecapa | mms
    source: dict  # {"file": path, "as": "path"|"bytes", "how": ...} or {"array": spec}
    sample_rate: object = 16000
    options: dict = field(default_factory=dict)
    argv: List[str] = field(default_factory=list)  # the CLI's options

    def describe(self) -> str:
        what = self.source.get("how") or self.source.get("array")
        return f"#{self.index} {self.target} {self.model} {what} rate={self.sample_rate!r} {self.options or self.argv}"


def make_cases(count: int, seed: int, seeds: Dict[str, bytes], folder: Path) -> List[Case]:
    """`count` cases from `seed`, their mutated files written to `folder`."""
    rng = np.random.default_rng(seed)
    names = sorted(seeds)
    cases = []
    for index in range(count):
        target = str(rng.choice(["identify", "identify", "identify", "embed", "predict", "cli"]))
        model = str(rng.choice(["ecapa", "mms"]))
        if target == "predict" or (target != "cli" and rng.random() < 0.4):
            source = {"array": random_array_spec(rng)}
        else:
            name = names[int(rng.integers(len(names)))]
            data, how = (seeds[name], "intact") if rng.random() < 0.1 else mutate(rng, seeds[name], seeds[names[int(rng.integers(len(names)))]])
            suffix = Path(name).suffix if rng.random() < 0.8 else str(rng.choice([".wav", ".mp3", ".ogg", ".flac", ".m4a", ""]))
            path = folder / f"case{index:06d}{suffix}"
            path.write_bytes(data)
            given_as = "path" if target == "cli" or rng.random() < 0.7 else "bytes"
            source = {"file": str(path), "as": given_as, "how": f"{name} {how} as {given_as} {suffix or 'no suffix'}"}
        case = Case(index, target, model, source)
        if "array" in source:
            rates = RATES[1] if rng.random() < BAD_OPTION_RATE else RATES[0]
            case.sample_rate = rates[int(rng.integers(len(rates)))]
        if target in ("identify", "embed"):
            case.options = random_options(rng)
            if target == "embed":
                case.options = {k: v for k, v in case.options.items() if k in ("batch_size", "allow_partial")}
        elif target == "predict":
            case.options = {k: v for k, v in random_options(rng).items() if k == "top_k"}
        else:
            for option, (good, bad) in CLI_OPTIONS.items():
                if rng.random() < 0.3:
                    values = bad if bad and rng.random() < BAD_OPTION_RATE else good
                    case.argv += [option, values[int(rng.integers(len(values)))]]
            case.argv += [flag for flag in CLI_FLAGS if rng.random() < 0.3]
            if rng.random() < 0.2:
                case.argv += ["--output", str(folder / str(rng.choice([f"out{index}.txt", "missing/out.txt", "."])))]
        cases.append(case)
    return cases


# -- the worker pool --------------------------------------------------------------------------------
def send(stream, message) -> None:
    blob = pickle.dumps(message)
    stream.write(struct.pack("<I", len(blob)) + blob)
    stream.flush()


def receive(stream, deadline: Optional[float] = None):
    """One message, or None at end of stream; TimeoutError past the deadline."""
    header = _read(stream, 4, deadline)
    return None if header is None else pickle.loads(_read(stream, struct.unpack("<I", header)[0], deadline))


def _read(stream, size: int, deadline: Optional[float]):
    chunks, left = [], size
    while left:
        if deadline is not None:
            ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
        chunk = os.read(stream.fileno(), left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Worker:
    """A subprocess that loads the models once and runs cases until told to stop."""

    def __init__(self, models: Dict[str, str]):
        self.process = subprocess.Popen([sys.executable, str(HERE / "worker.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        send(self.process.stdin, models)
        if receive(self.process.stdout, time.monotonic() + 300) != "ready":
            raise RuntimeError("fuzz worker failed to start")
        self.case: Optional[Case] = None
        self.deadline = 0.0

    def start(self, case: Case, timeout: float) -> None:
        self.case, self.deadline = case, time.monotonic() + timeout
        send(self.process.stdin, case)

    def finish(self) -> dict:
        """The running case's outcome; a dead or stuck worker is reported and must be replaced."""
        try:
            reply = receive(self.process.stdout, self.deadline)
        except TimeoutError:
            self.process.kill()
            self.process.wait()
            return {"outcome": "hang", "detail": "no answer within the timeout"}
        if reply is None:
            code = self.process.wait()
            return {"outcome": "crash", "detail": f"worker exited with status {code}"}
        return reply

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Report:
    counts: Counter = field(default_factory=Counter)
    by_target: Counter = field(default_factory=Counter)  # (target, outcome) -> cases
    failures: List[dict] = field(default_factory=list)  # {case, outcome, detail}
    messages: Counter = field(default_factory=Counter)  # (outcome, first words of the detail) -> cases
    seconds: float = 0.0


def run_cases(cases: List[Case], models: Dict[str, str], workers: int = 2, timeout: float = 30.0,
              progress=None) -> Report:
    """Every case through the pool; a worker that hangs or dies is replaced."""
    report, start = Report(), time.monotonic()
    pending = list(reversed(cases))
    pool = [Worker(models) for _ in range(min(workers, len(cases)))]
    busy: List[Worker] = []
    try:
        while pending or busy:
            for worker in [w for w in pool if w not in busy]:
                if pending:
                    worker.start(pending.pop(), timeout)
                    busy.append(worker)
            ready, _, _ = select.select([w.process.stdout for w in busy], [], [],
                                        max(0.0, min(w.deadline for w in busy) - time.monotonic()))
            for worker in list(busy):
                if worker.process.stdout in ready or time.monotonic() >= worker.deadline:
                    reply = worker.finish()
                    _record(report, worker.case, reply)
                    busy.remove(worker)
                    if not worker.alive:
                        pool[pool.index(worker)] = Worker(models)
                    if progress:
                        progress(report)
    finally:
        for worker in pool:
            worker.stop()
    report.seconds = time.monotonic() - start
    return report


def _record(report: Report, case: Case, reply: dict) -> None:
    outcome = reply["outcome"]
    report.counts[outcome] += 1
    report.by_target[(case.target, outcome)] += 1
    report.messages[(outcome, " ".join(str(reply.get("detail", "")).split()[:8]))] += 1
    if outcome in FAILURES:
        report.failures.append({"case": case, "outcome": outcome, "detail": reply.get("detail", "")})
