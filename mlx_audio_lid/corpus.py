"""Corpus-scale language ID: many files in, one Parquet row per file out, in one process or on Ray Data.

    from mlx_audio_lid.corpus import LanguageIdentifier, identify_corpus

    identify_corpus(["clips/", "more.jsonl"], "model-folder", "out.parquet", engine="ray", num_workers=4)

    ds = ray.data.from_items([{"path": p} for p in paths])          # or "audio" + "sample_rate" columns
    ds.map_batches(LanguageIdentifier, fn_constructor_kwargs={"model": "model-folder"}, batch_size=16,
                   compute=ray.data.ActorPoolStrategy(size=4))     # -> rows of corpus_output.schema()

Inputs are audio files, folders (searched as `mlx_audio_lid identify` searches them) and
manifests (CSV or JSONL with a `path` column; relative paths are relative to the manifest).
Output and resuming: corpus_output.py. Ray is optional (`pip install 'mlx-audio-lid[ray]'`).
"""

import csv
import json
import os
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from .corpus_output import PartWriter, row, schema, to_table

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")
ENGINES = ("local", "ray")


def manifest_paths(manifest) -> List[str]:
    """The `path` column of a CSV or JSONL manifest, relative entries joined to its folder."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"no manifest at {manifest}")
    with open(manifest, newline="", encoding="utf-8") as lines:
        if manifest.suffix.lower() == ".csv":
            reader = csv.DictReader(lines)
            if "path" not in (reader.fieldnames or []):
                raise ValueError(f"manifest {manifest} has no 'path' column (header: {reader.fieldnames})")
            entries = [(reader.line_num, entry["path"]) for entry in reader]
        else:
            entries = [(number, _json_path(manifest, number, line)) for number, line in enumerate(lines, 1) if line.strip()]
    for number, path in entries:
        if not path:
            raise ValueError(f"manifest {manifest} line {number}: empty path")
    return [str(manifest.parent / path) for _, path in entries]  # an absolute path stays as it is


def _json_path(manifest: Path, number: int, line: str) -> str:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"manifest {manifest} line {number}: not JSON ({error})") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise ValueError(f"manifest {manifest} line {number}: no 'path' string")
    return entry["path"]


def corpus_inputs(inputs: Iterable[str]) -> Dict[str, Optional[str]]:
    """path -> None for each audio file to identify (first mention kept), or -> the reason it cannot be."""
    from .cli import audio_files  # the same folder search as `identify`

    found: Dict[str, Optional[str]] = {}
    for name in inputs:
        if Path(name).suffix.lower() in MANIFEST_SUFFIXES:
            pairs = ((path, None) for path in manifest_paths(name))
        else:
            pairs = audio_files([str(name)])
        for path, problem in pairs:
            found.setdefault(path, problem)
    return found


def _columns(batch) -> Dict[str, list]:
    """A map_batches batch (dict of numpy arrays, pandas DataFrame or pyarrow Table) -> lists."""
    if isinstance(batch, pa.Table):  # to_numpy keeps an audio list's dtype (integer PCM is scaled)
        return {name: list(batch.column(name).to_numpy(zero_copy_only=False)) for name in batch.column_names}
    return {name: list(batch[name]) for name in batch}


class LanguageIdentifier:
    """A callable class for `ray.data.Dataset.map_batches`: the model is loaded once per worker.

    A batch has a `path` column (files), or an `audio` column (1-D arrays; an optional
    `sample_rate` column, else 16 kHz, and an optional `path` column kept as the row's key).
    Each batch goes through one `mlx_audio_lid.identify` call (padded batches with masks); if
    it raises, its items are retried one by one, so a bad file gets an error row and the
    others their answers. Returns a pyarrow Table of `corpus_output.schema(segments)`.
    """

    def __init__(self, model, *, segments: bool = False, top_k: int = 5, batch_size: int = 8,
                 dtype: Optional[str] = None, **identify_options):
        import mlx_audio_lid

        self.model = mlx_audio_lid.load(model, dtype=dtype) if isinstance(model, (str, os.PathLike)) else model
        self.options = dict(identify_options, segments=segments, top_k=top_k, batch_size=batch_size)
        self.schema = schema(segments)
        # One second of silence checks the options (languages, window, ...) here, once: a bad
        # option fails the run at start instead of giving every file an error row.
        mlx_audio_lid.identify(self.model, np.zeros(16000, np.float32), **self.options)

    def __call__(self, batch) -> pa.Table:
        columns = _columns(batch)
        if "audio" in columns:
            sources = [np.asarray(audio) for audio in columns["audio"]]
            keys = columns.get("path", [None] * len(sources))
            rates = columns.get("sample_rate", [None] * len(sources))
        elif "path" in columns:
            sources = keys = [str(path) for path in columns["path"]]
            rates = [None] * len(sources)
        else:
            raise ValueError(f"a batch needs a 'path' column (files) or an 'audio' column (arrays); got {sorted(columns)}")
        rows: List[dict] = [{}] * len(sources)
        for rate in dict.fromkeys(rates):  # identify takes one sample rate per call
            chosen = [i for i, r in enumerate(rates) if r == rate]
            for i, result in zip(chosen, self._identify([sources[i] for i in chosen], rate)):
                rows[i] = row(keys[i], **result)
        return to_table(rows, self.schema)

    def _identify(self, sources: Sequence, rate) -> List[dict]:
        import mlx_audio_lid
        from .cli import one_line

        options = self.options if rate is None else dict(self.options, sample_rate=int(rate))
        try:
            return [{"record": p.to_dict()} for p in mlx_audio_lid.identify(self.model, list(sources), **options)]
        except Exception as error:  # which item was it? each alone, so only that one fails
            if len(sources) == 1:
                return [{"error": one_line(error)}]
        return [self._identify([source], rate)[0] for source in sources]


def _local_tables(paths: List[str], identifier: LanguageIdentifier, batch_size: int, progress: bool) -> Iterator[pa.Table]:
    from tqdm import tqdm

    with tqdm(total=len(paths), unit="file", disable=not progress) as bar:
        for begin in range(0, len(paths), batch_size):
            batch = paths[begin : begin + batch_size]
            yield identifier({"path": np.array(batch, dtype=object)})
            bar.update(len(batch))


def _ray_tables(paths: List[str], model, options: dict, batch_size: int, num_workers: Optional[int],
                cpus_per_worker: float, gpus_per_worker: float, address: Optional[str],
                num_cpus: Optional[int]) -> Iterator[pa.Table]:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ValueError("--engine ray needs Ray Data: pip install 'mlx-audio-lid[ray]'") from None
    started = not ray.is_initialized()
    if started:  # a cluster: --address or RAY_ADDRESS; otherwise a private local instance
        address = address or os.environ.get("RAY_ADDRESS")
        ray.init(address=address) if address else ray.init(address="local", num_cpus=num_cpus)
    try:
        # One block per batch: results stream back (and are written) batch by batch.
        blocks = -(-len(paths) // batch_size)
        if num_workers is None:
            num_workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
        num_workers = min(num_workers, blocks)  # a worker with no batch would only load the model
        results = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks).map_batches(
            LanguageIdentifier, fn_constructor_kwargs=dict(options, model=model), batch_size=batch_size,
            batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=num_workers), num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker)
        yield from results.iter_batches(batch_size=None, batch_format="pyarrow")
    finally:
        if started:
            ray.shutdown()


def identify_corpus(inputs: Iterable[str], model, output, *, engine: str = "local", num_workers: Optional[int] = None,
                    batch_size: int = 8, segments: bool = False, rows_per_part: int = 1000, address: Optional[str] = None,
                    cpus_per_worker: float = 1, gpus_per_worker: float = 0, num_cpus: Optional[int] = None,
                    progress: bool = False,
                    **options) -> dict:
    """Identify every input file into the Parquet dataset folder `output`; files it has are skipped.

    `engine="ray"` runs `num_workers` LanguageIdentifier actors (default: the cluster's CPUs /
    `cpus_per_worker`), each reserving `cpus_per_worker` CPUs and `gpus_per_worker` GPUs, on
    the Ray cluster at `address` (or $RAY_ADDRESS), or on a local Ray instance with `num_cpus`;
    if Ray is already initialised, that session is used. `model` is
    a name `mlx_audio_lid.load` reads on every worker (or, for the local engine, a loaded model).
    Other options (`top_k`, `languages`, `dtype`, ...) go to `load`/`identify`.
    Returns counts: `skipped` (already in the output), `processed` (new rows), `errors` (among them).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if engine == "local" and num_workers not in (None, 1):
        raise ValueError("num_workers is for engine='ray'; the local engine is one process")
    if not isinstance(model, (str, os.PathLike)):
        if engine == "ray":
            raise ValueError("engine='ray' loads the model on every worker: pass its folder or Hub id, not a model")
    elif not Path(model).exists() and str(model).count("/") != 1:
        raise FileNotFoundError(f"no model folder at {model} (and it is not a Hub repo id)")
    found = corpus_inputs(inputs)
    options = dict(options, segments=segments, batch_size=batch_size)
    with PartWriter(output, schema(segments), rows_per_part=rows_per_part) as writer:
        done = writer.done_paths()
        todo = [path for path, problem in found.items() if path not in done and problem is None]
        unusable = [row(path, error=problem) for path, problem in found.items() if path not in done and problem]
        writer.add(to_table(unusable, writer.schema))
        if not todo:
            tables: Iterable[pa.Table] = ()
        elif engine == "local":
            tables = _local_tables(todo, LanguageIdentifier(model, **options), batch_size, progress)
        else:
            tables = _ray_tables(todo, model, options, batch_size, num_workers, cpus_per_worker, gpus_per_worker,
                                 address, num_cpus)
        errors = len(unusable)
        for table in tables:
            writer.add(table)
            errors += table.num_rows - table.column("error").null_count
    return {"skipped": len(found) - len(todo) - len(unusable), "processed": len(todo) + len(unusable), "errors": errors}
