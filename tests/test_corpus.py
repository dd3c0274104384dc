"""Corpus runs (mlx_audio_lid/corpus.py): Ray Data and local engines, resuming, manifests, Parquet rows.

One Ray session (2 CPUs, a private local instance) serves every Ray test in this module; the
killed run is a subprocess that joins it with --address, so the cluster path is tested too.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile

import mlx_audio_lid as lid
from mlx_audio_lid import cli
from mlx_audio_lid.corpus import LanguageIdentifier, identify_corpus, manifest_paths
from mlx_audio_lid.corpus_output import PartWriter, schema

from references import ecapa as reference_ecapa

CLIPS = 50
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """The tiny VoxLingua107 fixture as an MLX folder, so workers load it without torch."""
    folder = tmp_path_factory.mktemp("model") / "voxlingua107_tiny_mlx"
    lid.convert(reference_ecapa.FIXTURES / "voxlingua107_tiny", folder)
    return folder


@pytest.fixture(scope="module")
def model(model_folder):
    return lid.load(model_folder)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """50 clips of 0.5-4 s cut from the espeak-ng fixture clips (WAV and FLAC, some nested), plus bad.wav."""
    root = tmp_path_factory.mktemp("corpus")
    sources = [reference_ecapa.clip(name) for name in reference_ecapa.clip_names()]
    rng = np.random.default_rng(0)
    (root / "nested").mkdir()
    for i in range(CLIPS):
        audio = sources[i % len(sources)]
        length = int(16000 * (4.0 if i % 10 == 0 else rng.uniform(0.5, 1.5)))
        start = int(rng.integers(0, max(1, len(audio) - length)))
        target = root / ("nested" if i % 4 == 0 else "") / f"clip{i:02d}.{'flac' if i % 7 == 0 else 'wav'}"
        soundfile.write(target, audio[start : start + length], 16000)
    (root / "bad.wav").write_bytes(b"these bytes are not audio " * 40)
    return root


def audio_paths(root: Path) -> list:
    """What a folder search finds, bad.wav included."""
    return sorted(str(p) for p in root.rglob("*") if p.suffix in (".wav", ".flac"))


def clip_paths(root: Path) -> list:
    return [p for p in audio_paths(root) if not p.endswith("bad.wav")]


@pytest.fixture(scope="module")
def expected(corpus, model):
    """What `identify` answers for each clip alone, by path (and by inode, for hard links)."""
    return {path: lid.identify(model, path).to_dict() for path in clip_paths(corpus)}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="the Ray engine needs ray[data]: pip install 'mlx-audio-lid[ray]'")
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2)  # our own instance, never another process's cluster
    print(f"\nRay start-up: {time.perf_counter() - start:.1f} s")
    yield ray
    ray.shutdown()


def close(a, b) -> bool:
    """Equal, floats to 1e-3 relative: a clip in a padded batch vs alone differs at float32 rounding
    in the embedding (~1e-6), which this fixture's classifier scales ~100x (README, Fidelity)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-7)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return a == b


def rows_by_path(folder) -> dict:
    rows = pq.read_table(folder).to_pylist()
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)), "duplicate rows"
    return {r["path"]: r for r in rows}


def assert_rows_are_identify(rows: dict, expected: dict, key=lambda path: path) -> None:
    for path, row in rows.items():
        if path.endswith("bad.wav"):
            assert row["error"] and "bad.wav" in row["error"] and row["language"] is None and row["top"] is None
        else:
            answer = dict(expected[key(path)], error=None)
            assert close({k: v for k, v in row.items() if k != "path"}, answer), (row, answer)


def test_ray_engine_gives_every_file_the_row_identify_gives_it(ray_session, corpus, model_folder, expected, tmp_path):
    out = tmp_path / "out.parquet"
    start = time.perf_counter()
    counts = identify_corpus([str(corpus)], str(model_folder), out, engine="ray", num_workers=2, batch_size=4)
    print(f"\nray engine, {CLIPS + 1} files, 2 workers: {time.perf_counter() - start:.1f} s")
    rows = rows_by_path(out)
    assert sorted(rows) == audio_paths(corpus) and len(rows) == CLIPS + 1
    assert counts == {"skipped": 0, "processed": CLIPS + 1, "errors": 1}
    assert_rows_are_identify(rows, expected)
    assert pq.read_schema(next(out.glob("part-*.parquet"))).remove_metadata().equals(schema(segments=False))
    # The same batches in one process: the same rows, to float32 rounding. Not bit for bit: Ray's
    # workers run their BLAS on other thread counts than this process, and OpenBLAS's sums then
    # differ in the last bits (MKL's happened to agree).
    local = tmp_path / "local.parquet"
    identify_corpus([str(corpus)], str(model_folder), local, batch_size=4)
    local_rows = rows_by_path(local)
    assert local_rows.keys() == rows.keys() and all(close(local_rows[p], rows[p]) for p in rows)
    again = identify_corpus([str(corpus)], str(model_folder), out, engine="ray", num_workers=2)
    assert again == {"skipped": CLIPS + 1, "processed": 0, "errors": 0}  # all there: Ray is not even started


def test_local_engine_with_segments(corpus, model, expected, tmp_path):
    out = tmp_path / "out.parquet"
    counts = identify_corpus([str(corpus)], model, out, batch_size=3, segments=True, rows_per_part=7)
    rows = rows_by_path(out)
    assert counts["processed"] == CLIPS + 1 and len(list(out.glob("part-*.parquet"))) == math.ceil((CLIPS + 1) / 7)
    without_segments = {path: {k: v for k, v in row.items() if k != "segments"} for path, row in rows.items()}
    assert_rows_are_identify(without_segments, expected)
    for path, row in rows.items():
        if row["error"] is None:
            assert close(row["segments"], lid.identify(model, path, segments=True).to_dict()["segments"])
    with pytest.raises(ValueError, match="another schema.*segments"):  # resuming must not mix schemas
        identify_corpus([str(corpus)], model, out)


def test_killed_run_resumes_without_duplicates(ray_session, corpus, model_folder, expected, tmp_path):
    """SIGKILL a CLI run (manifest CSV, Ray) after some parts are written, then rerun it to the end."""
    links = tmp_path / "links"  # more files, so the run is surely mid-way when killed
    links.mkdir()
    paths = clip_paths(corpus) + [str(corpus / "bad.wav")]
    for copy in range(2):
        for path in paths[:CLIPS]:
            os.link(path, links / f"{copy}_{Path(path).name}")
    by_inode = {os.stat(p).st_ino: p for p in paths}
    manifest = tmp_path / "manifest.csv"
    listed = [os.path.relpath(p, tmp_path) for p in paths] + [f"links/{p.name}" for p in sorted(links.iterdir())]
    manifest.write_text("id,path\n" + "".join(f"{i},{p}\n" for i, p in enumerate(listed)))
    out = tmp_path / "out.parquet"
    address = ray_session.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "mlx_audio_lid", "corpus", str(manifest), "--model", str(model_folder),
               "--output", str(out), "--engine", "ray", "--address", address, "--num-workers", "2",
               "--batch-size", "2", "--rows-per-part", "4"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("part-*.parquet")) < 8:
            assert run.poll() is None, f"the run ended before it was killed: {run.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no rows written in 180 s"
            time.sleep(0.05)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the driver and anything it started, mid-write or not
        run.wait()
        run.stderr.close()
    written = sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("part-*.parquet"))
    assert 8 <= written < len(listed)  # killed mid-way; every part left behind is whole
    # The rerun is local: what is skipped is decided before any engine starts, and this saves a Ray pool's start-up.
    counts = identify_corpus([str(manifest)], str(model_folder), out, batch_size=8)
    assert counts["skipped"] == written and counts["processed"] == len(listed) - written
    rows = rows_by_path(out)
    assert sorted(rows) == sorted(str(tmp_path / p) for p in listed)
    assert_rows_are_identify(rows, expected, key=lambda path: by_inode[os.stat(path).st_ino])
    assert not list(out.glob(".part-*"))


def test_dataset_of_arrays_through_map_batches(ray_session, corpus, model_folder, model):
    """The Python form: a Ray Dataset of arrays (int16 PCM at 16 and 8 kHz) -> rows."""
    import ray.data

    # One dtype per column (Ray Data's tensor columns hold one); two rates, each its own identify call.
    clips = [soundfile.read(p, dtype="int16")[0] for p in clip_paths(corpus)[:6]]
    items = [{"path": f"clip{i}", "audio": clip[:: 1 + i % 2], "sample_rate": 16000 // (1 + i % 2)}
             for i, clip in enumerate(clips)]
    results = ray.data.from_items(items).map_batches(
        LanguageIdentifier, fn_constructor_kwargs={"model": str(model_folder), "top_k": 3}, batch_size=4,
        compute=ray.data.ActorPoolStrategy(size=1))
    rows = pa.concat_tables(results.iter_batches(batch_size=None, batch_format="pyarrow")).to_pylist()
    assert sorted(r["path"] for r in rows) == [item["path"] for item in items]
    for row in rows:
        item = items[int(row["path"][4:])]
        answer = lid.identify(model, item["audio"], sample_rate=item["sample_rate"], top_k=3).to_dict()
        assert close(row, dict(answer, path=item["path"], error=None)) and len(row["top"]) == 3


def test_manifests_csv_and_jsonl_through_the_command(capsys, corpus, model_folder, expected, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    clips = clip_paths(corpus)[:4]
    relative = [os.path.relpath(p, lists) for p in clips]
    (lists / "a.csv").write_text("path,speaker\n" + "".join(f"{p},s{i}\n" for i, p in enumerate(relative[:2])))
    (lists / "b.jsonl").write_text(json.dumps({"path": clips[2]}) + "\n\n"  # absolute; a blank line is skipped
                                   + json.dumps({"path": "missing.wav", "note": 1}) + "\n"
                                   + json.dumps({"path": relative[3]}) + "\n")
    assert manifest_paths(lists / "a.csv") == [str(lists / p) for p in relative[:2]]
    out = tmp_path / "out.parquet"
    code = cli.main(["corpus", str(lists / "a.csv"), str(lists / "b.jsonl"), str(lists / "a.csv"),
                     "--model", str(model_folder), "--output", str(out)])
    assert code == 1  # one file failed; the others have their answers
    assert "5 new rows (1 errors)" in capsys.readouterr().err
    rows = rows_by_path(out)
    assert len(rows) == 5  # a.csv given twice: its files once
    assert "no such file" in rows[str(lists / "missing.wav")]["error"]
    resolved = {str(Path(p).resolve()): r for p, r in rows.items() if "missing" not in p}
    assert sorted(resolved) == [str(Path(p).resolve()) for p in clips]
    assert_rows_are_identify(resolved, {str(Path(p).resolve()): answer for p, answer in expected.items()})


@pytest.mark.parametrize("name, text, message", [
    ("no_path.csv", "file,x\na.wav,1\n", "no 'path' column"),
    ("empty_path.csv", "path\na.wav\n\"\"\n", "line 3: empty path"),
    ("bad.jsonl", '{"path": "a.wav"}\n{"path": \n', "line 2: not JSON"),
    ("no_path.jsonl", '{"file": "a.wav"}\n', "line 1: no 'path' string"),
])
def test_a_bad_manifest_is_an_error_naming_the_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        manifest_paths(tmp_path / name)


def test_output_folder_leftovers_and_bad_arguments(corpus, model, tmp_path):
    out = tmp_path / "out.parquet"
    out.mkdir()
    (out / ".part-000001.parquet.tmp").write_bytes(b"half a part from a killed run")
    clip = clip_paths(corpus)[0]
    identify_corpus([clip], model, out)
    assert not (out / ".part-000001.parquet.tmp").exists() and list(rows_by_path(out)) == [clip]
    with PartWriter(out, schema()):  # a run holds the folder: a second one is refused
        with pytest.raises(ValueError, match="another run is writing"):
            identify_corpus([clip], model, out)
    (tmp_path / "file.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="is a file"):
        identify_corpus([clip], model, tmp_path / "file.parquet")
    with pytest.raises(ValueError, match="num_workers is for engine='ray'"):
        identify_corpus([clip], model, out, num_workers=2)
    with pytest.raises(FileNotFoundError, match="no model folder"):
        identify_corpus([clip], str(tmp_path / "nothing" / "here"), out)
    with pytest.raises(ValueError, match="no label for 'klingon'"):  # checked once, before any file gets a row
        identify_corpus([str(corpus)], model, tmp_path / "other.parquet", languages="klingon")
    assert not list((tmp_path / "other.parquet").glob("part-*"))
