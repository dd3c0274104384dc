"""Concurrent requests gathered into padded batches by the one thread that runs the model.

Requests arrive on many threads; the model is called from one worker thread only, which takes
the first waiting clip, gathers more for at most `max_wait` seconds (up to `max_batch`), and
runs each group of clips that share the same options (candidate languages, top-k, segments,
threshold) as one `identify` call: identify pads clips of different lengths with masks, so
each answer equals that clip's answer alone. If a batched call fails, its clips are run one
by one, so only the clip at fault gets the error.

mlx-audio's own server has a batching broker (mlx_audio.server_inference), but it never waits
for a batch to fill, and its adapter protocol is internal to that server.
"""

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..identification import identify

SHUTDOWN_TIMEOUT_SECONDS = 30.0  # how long close() waits for the batch in progress


@dataclass
class _Job:
    clip: np.ndarray  # 16 kHz mono float32, decoded by the request's own thread
    options: Tuple[Tuple[str, object], ...]  # identify's keyword arguments, hashable for grouping
    future: Future = field(default_factory=Future)


class Batcher:
    """`submit(clip, options)` -> a Future of the clip's LanguagePrediction."""

    def __init__(self, model, max_batch: int = 16, max_wait: float = 0.010):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must not be negative, got {max_wait}")
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait
        self._jobs: "queue.Queue[Optional[_Job]]" = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="mlx-audio-lid-batcher", daemon=True)
        self._stats_lock = threading.Lock()
        self._stats = {"requests": 0, "batches": 0, "largest_batch": 0}  # answered by the model

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Finish the batch in progress, fail whatever still waits, stop the worker."""
        self._jobs.put(None)
        self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)

    def submit(self, clip: np.ndarray, options: Dict[str, object]) -> Future:
        if not self._thread.is_alive():
            raise RuntimeError("the batcher is not running")
        job = _Job(clip, tuple(sorted(options.items())))
        self._jobs.put(job)
        return job.future

    def stats(self) -> Dict[str, int]:
        with self._stats_lock:
            return dict(self._stats, queued=self._jobs.qsize())

    # -- the worker thread -----------------------------------------------------------------
    def _work(self) -> None:
        stopping = False
        while not stopping:
            jobs, stopping = self._gather()
            groups: Dict[tuple, List[_Job]] = {}
            for job in jobs:
                if job.future.set_running_or_notify_cancel():  # False: its client has gone
                    groups.setdefault(job.options, []).append(job)
            for options, group in groups.items():
                try:
                    self._run(group, dict(options))
                except Exception as error:  # a fault here must not stop the worker
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(error)
        while True:  # after close(): nothing waits forever
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.future.set_exception(RuntimeError("the server is shutting down"))

    def _gather(self) -> Tuple[List[_Job], bool]:
        """The first waiting job plus whatever arrives within max_wait; (jobs, stop requested)."""
        first = self._jobs.get()
        if first is None:
            return [], True
        jobs, deadline = [first], time.monotonic() + self.max_wait
        while len(jobs) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:  # past the deadline, still take what is already queued
                job = self._jobs.get(timeout=remaining) if remaining > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _run(self, jobs: List[_Job], options: Dict[str, object]) -> None:
        jobs = [job for job in jobs if self._long_enough(job)]
        if not jobs:
            return
        try:
            predictions = identify(self.model, [job.clip for job in jobs], batch_size=self.max_batch, **options)
        except Exception as error:
            if len(jobs) == 1:
                jobs[0].future.set_exception(error)
            else:  # find the clip at fault: the others still get their answers
                for job in jobs:
                    self._run([job], options)
            return
        with self._stats_lock:
            self._stats["requests"] += len(jobs)
            self._stats["batches"] += 1
            self._stats["largest_batch"] = max(self._stats["largest_batch"], len(jobs))
        for job, prediction in zip(jobs, predictions):
            job.future.set_result(prediction)

    def _long_enough(self, job: _Job) -> bool:
        """A clip shorter than the model's minimum fails here, before it can fail a whole batch."""
        try:
            self.model.check_lengths([len(job.clip)])
        except ValueError as error:
            job.future.set_exception(error)
            return False
        return True
