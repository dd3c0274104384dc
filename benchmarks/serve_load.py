"""`mlx_audio_lid serve` under load: throughput and p50/p99 latency, against the library alone.

Concurrent clients (threads, one keep-alive connection each) post WAV clips to
/detect-language, each waiting for its answer before sending the next. The reference row is
the library in this process, `identify(model, clip)` one clip at a time, over the same clips;
the server rows run without batching (--max-batch 1) and with it. Every server answer is
checked against the library's answer for that clip. The server and the clients share this
machine's cores, so the numbers include the clients' cost.

    python -m benchmarks.serve_load                       # VoxLingua107-sized ECAPA, random weights
    python -m benchmarks.serve_load --model FOLDER --clients 8 --requests 25

tests/test_serve.py uses ServerProcess and load_test from here for its load test.
"""

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import httpx
import numpy as np

import mlx_audio_lid
from references import sizes

from .common import machine_description, markdown_table, save_random_model

START_TIMEOUT_SECONDS = 300.0  # model load on a busy machine
REQUEST_TIMEOUT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`mlx_audio_lid serve` in a subprocess on a free loopback port, stopped on exit.

    The subprocess imports the same mlx_audio_lid as this process (its folder goes first on
    PYTHONPATH); its output goes to `log` (a file, so a full pipe can never block it).
    """

    def __init__(self, model: str, *options: str, log: Path):
        self.model, self.options, self.log_path = str(model), options, Path(log)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen] = None

    def __enter__(self) -> "ServerProcess":
        root = str(Path(mlx_audio_lid.__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        command = [sys.executable, "-m", "mlx_audio_lid", "serve", "--model", self.model, "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning", *self.options]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the server exited with status {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"the server did not answer /health within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=REQUEST_TIMEOUT_SECONDS).json()


@dataclass
class Call:
    """One request: a multipart upload to `route`, with optional query parameters and form fields."""

    route: str
    field: str
    content: bytes
    filename: str = "clip.wav"
    params: Dict[str, str] = field(default_factory=dict)
    data: Dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    index: int  # the call's position in the list given to load_test
    status: int
    body: dict
    seconds: float


def load_test(url: str, calls: Sequence[Call], clients: int) -> List[Answer]:
    """`clients` threads share the calls (client c sends calls c, c + clients, ...), one at a time each."""

    def client(first: int) -> List[Answer]:
        answers = []
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as session:
            for index in range(first, len(calls), clients):
                call = calls[index]
                began = time.perf_counter()
                response = session.post(call.route, params=call.params, data=call.data,
                                        files={call.field: (call.filename, call.content)})
                answers.append(Answer(index, response.status_code, response.json(), time.perf_counter() - began))
        return answers

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, c) for c in range(clients)]
        bound = REQUEST_TIMEOUT_SECONDS * -(-len(calls) // clients)  # each client's requests, each bounded
        answers = [answer for future in futures for answer in future.result(timeout=bound)]
    return sorted(answers, key=lambda answer: answer.index)


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    """16-bit mono WAV of float samples in [-1, 1)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes((np.clip(samples, -1, 1 - 2 ** -15) * 32768).astype("<i2").tobytes())
    return buffer.getvalue()


def same_detection(body: dict, prediction, tolerance: float = 1e-4) -> bool:
    """A /detect-language answer equals the library's prediction (probabilities to float32 rounding:
    a clip batched with others differs from it alone by up to ~1.5e-5 here)."""
    from mlx_audio_lid.serve.whisper_codes import detect_language_answer

    wanted = detect_language_answer(prediction)
    return (body.keys() == wanted.keys() and body["language_code"] == wanted["language_code"]
            and body["detected_language"] == wanted["detected_language"]
            and abs(body["confidence"] - wanted["confidence"]) <= tolerance)


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model folder (default: a VoxLingua107-sized ECAPA with random weights)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--seconds", default="2,3,4,5,6,8", help="clip lengths, cycled through the requests")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    model_path = Path(args.model) if args.model else save_random_model(sizes.voxlingua107_ecapa(),
                                                                        work / "ecapa-full-random")
    rng = np.random.default_rng(0)
    lengths = [float(s) for s in args.seconds.split(",")]
    clips = [wav_bytes(0.1 * rng.standard_normal(int(s * 16000))) for s in lengths]
    calls = [Call("/detect-language", "audio_file", clips[i % len(clips)]) for i in range(args.clients * args.requests)]

    model = mlx_audio_lid.load(model_path, dtype="float32")
    expected = [mlx_audio_lid.identify(model, clip) for clip in clips]  # also the warm-up
    began = time.perf_counter()
    alone = []
    for call in calls:
        start = time.perf_counter()
        mlx_audio_lid.identify(model, call.content)
        alone.append(time.perf_counter() - start)
    library_rate = len(calls) / (time.perf_counter() - began)
    header = ["setup", "clients", "requests", "req/s", "p50 ms", "p99 ms", "req/s vs library", "largest batch",
              "answers equal to library"]
    rows = [["library, identify() one clip a call, in process", 1, len(calls), f"{library_rate:.1f}",
             f"{percentile_ms(alone, 50):.1f}", f"{percentile_ms(alone, 99):.1f}", "1.00", 1, "-"]]
    del model

    for max_batch in dict.fromkeys([1, args.max_batch]):
        options = ["--max-batch", str(max_batch), "--max-wait-ms", str(args.max_wait_ms), "--dtype", "float32"]
        with ServerProcess(model_path, *options, log=work / f"server-{max_batch}.log") as server:
            load_test(server.url, calls[: args.clients], args.clients)  # warm-up: connections, first batches
            began = time.perf_counter()
            answers = load_test(server.url, calls, args.clients)
            rate = len(calls) / (time.perf_counter() - began)
            largest = server.health()["largest_batch"]
        equal = sum(a.status == 200 and same_detection(a.body, expected[a.index % len(clips)]) for a in answers)
        latencies = [a.seconds for a in answers]
        rows.append([f"server --max-batch {max_batch} --max-wait-ms {args.max_wait_ms:g}", args.clients, len(calls),
                     f"{rate:.1f}", f"{percentile_ms(latencies, 50):.1f}", f"{percentile_ms(latencies, 99):.1f}",
                     f"{rate / library_rate:.2f}", largest, f"{equal}/{len(calls)}"])

    title = (f"mlx_audio_lid serve, POST /detect-language, {model_path.name}, WAV clips of {args.seconds} s; "
             "a shared machine: other jobs may have run at the same time")
    print(f"{title}\nMachine: {machine_description()}\n")
    print(markdown_table(header, rows))
    if args.json:
        args.json.write_text(json.dumps({"title": title, "machine": machine_description(),
                                         "rows": [dict(zip(header, row)) for row in rows]}, indent=2))


if __name__ == "__main__":
    main()
