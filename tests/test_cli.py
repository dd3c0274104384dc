"""The `mlx_audio_lid` command end to end: formats, folders, schemas, bad input, exit codes."""

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from mlx_audio_lid import cli

from references import ecapa as reference_ecapa
import speech

MODEL = str(reference_ecapa.FIXTURES / "voxlingua107_tiny")  # a SpeechBrain folder, as published
RECORD_KEYS = {"path", "language", "code", "name", "probability", "duration", "speech", "top"}
TOP_KEYS = {"language", "code", "name", "probability"}
SEGMENT_KEYS = {"start", "end", "language", "code", "name", "probability"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """en.wav, de.flac, nested/ru.mp3 and nested/ru.ogg, plus a text file that is not audio."""
    root = tmp_path_factory.mktemp("cli")
    speech.speak("en", root / "en.wav")
    speech.convert(speech.speak("de", root / "de.wav"), "flac")
    (root / "de.wav").unlink()
    (root / "nested").mkdir()
    ru = speech.speak("ru", root / "nested" / "ru.wav")
    speech.convert(ru, "mp3"), speech.convert(ru, "ogg")
    ru.unlink()
    (root / "notes.txt").write_text("not audio, and not picked up from a folder")
    return root


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """One file per kind of bad input, named after what is wrong with it."""
    root = tmp_path_factory.mktemp("bad")
    (root / "empty.wav").write_bytes(b"")
    (root / "not_audio.wav").write_bytes(b"these bytes are not audio " * 40)
    soundfile.write(root / "too_short.wav", np.full(200, 0.1, np.float32), 16000)  # 12.5 ms < 40 ms minimum
    nan = np.sin(np.arange(16000) / 5).astype(np.float32)
    nan[5000] = np.nan
    soundfile.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    data = speech.speak("en", root / "whole.wav").read_bytes()
    (root / "truncated.wav").write_bytes(data[: len(data) // 2])
    (root / "whole.wav").unlink()
    return root


def run(capsys, *args):
    code = cli.main(["identify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_for_a_folder_has_one_record_per_audio_file(capsys, folder):
    code, out, err = run(capsys, str(folder), "--model", MODEL, "--format", "json", "--top-k", "3")
    records = json.loads(out)
    assert code == 0
    assert [os.path.relpath(r["path"], folder) for r in records] == ["de.flac", "en.wav", "nested/ru.mp3", "nested/ru.ogg"]
    for record in records:
        assert set(record) == RECORD_KEYS and len(record["top"]) == 3
        assert all(set(entry) == TOP_KEYS for entry in record["top"])
        assert record["top"][0]["language"] == record["language"]
        assert len(record["code"]) == 3 and record["duration"] > 3
    assert "4/4" in err  # the progress bar, on stderr


def test_jsonl_with_segments(capsys, folder):
    code, out, _ = run(capsys, str(folder / "en.wav"), str(folder / "nested"), "--model", MODEL,
                       "--format", "jsonl", "--segments")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == 3
    for record in records:
        assert set(record) == RECORD_KEYS | {"segments"} and record["segments"]
        assert all(set(s) == SEGMENT_KEYS for s in record["segments"])
        starts_ends = [(s["start"], s["end"]) for s in record["segments"]]
        assert all(a < b <= record["duration"] for a, b in starts_ends)


def test_csv_has_file_rows_and_segment_rows(capsys, folder):
    code, out, _ = run(capsys, str(folder / "en.wav"), "--model", MODEL, "--format", "csv", "--segments")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(rows[0]) == list(cli.CSV_COLUMNS)
    assert rows[0]["kind"] == "file" and rows[0]["top"].startswith(rows[0]["language"] + ":")
    assert len(rows) > 1 and {r["kind"] for r in rows[1:]} == {"segment"}
    assert all(float(r["start"]) < float(r["end"]) for r in rows)


def test_text_output_to_a_file(capsys, folder, tmp_path):
    target = tmp_path / "out.txt"
    code, out, _ = run(capsys, str(folder / "de.flac"), "--model", MODEL, "--output", str(target))
    assert code == 0 and out == ""
    line = target.read_text().splitlines()[0]
    assert line.startswith(f"{folder / 'de.flac'}: ") and "(" in line


def test_candidate_languages_restrict_the_answer(capsys, folder):
    code, out, _ = run(capsys, str(folder / "en.wav"), "--model", MODEL, "--format", "json",
                       "--languages", "eng,Russian,iw")
    record = json.loads(out)[0]
    assert code == 0 and {t["language"] for t in record["top"]} == {"en", "ru", "iw"}
    assert sum(t["probability"] for t in record["top"]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name, message", [
    ("empty.wav", "empty file"),
    ("not_audio.wav", "not audio that can be decoded"),
    ("too_short.wav", "shorter than this model's minimum"),
    ("nan.wav", "NaN or infinite"),
    ("truncated.wav", "truncated file"),
    ("missing.wav", "no such file"),
])
def test_each_bad_file_is_one_line_and_the_others_still_run(capsys, folder, bad_files, name, message):
    code, out, _ = run(capsys, str(bad_files / name), str(folder / "en.wav"), "--model", MODEL, "--format", "jsonl")
    bad, good = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert set(bad) == {"path", "error"} and message in bad["error"] and "\n" not in bad["error"]
    assert "language" in good


def test_all_zero_audio_is_und_not_an_error(capsys, tmp_path):
    soundfile.write(tmp_path / "zeros.wav", np.zeros(48000, np.int16), 16000)
    code, out, _ = run(capsys, str(tmp_path / "zeros.wav"), "--model", MODEL, "--format", "json", "--segments")
    record = json.loads(out)[0]
    assert code == 0 and (record["language"], record["probability"], record["segments"]) == ("und", 0.0, [])


def test_a_folder_without_audio_is_an_error_record(capsys, tmp_path):
    (tmp_path / "readme.txt").write_text("no audio here")
    code, out, _ = run(capsys, str(tmp_path), "--model", MODEL)
    assert code == 1 and "no audio files" in out


def test_plot_draws_the_timeline_of_one_file(capsys, folder, tmp_path):
    target = tmp_path / "timeline.png"
    code, out, _ = run(capsys, str(folder / "en.wav"), "--model", MODEL, "--plot", str(target), "--format", "json")
    assert code == 0 and target.read_bytes()[:4] == b"\x89PNG"
    assert "segments" not in json.loads(out)[0]  # drawn, not printed, unless --segments is given
    code, _, err = run(capsys, str(folder), "--model", MODEL, "--plot", str(target))
    assert code == 2 and "one file" in err


@pytest.mark.parametrize("model, message", [
    ("no-such-org/no-such-model", "--model path/to/folder"),
    ("./no/such/folder", "no model folder"),
])
def test_a_model_that_cannot_be_had_says_how_to_use_a_local_folder(capsys, folder, monkeypatch, model, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network here; offline mode answers at once
    code, out, err = run(capsys, str(folder / "en.wav"), "--model", model)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_convert_then_an_mlx_folder_through_python_m_answers_like_the_source_folder(capsys, folder, tmp_path):
    assert cli.main(["convert", "--hf-path", MODEL, "--mlx-path", str(tmp_path / "converted")]) == 0
    capsys.readouterr()
    done = subprocess.run(
        [sys.executable, "-m", "mlx_audio_lid", "identify", str(folder / "en.wav"), "--model",
         str(tmp_path / "converted"), "--format", "json"], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert run(capsys, str(folder / "en.wav"), "--model", MODEL, "--format", "json")[1] == done.stdout


@pytest.mark.parametrize("argv, status", [
    (["--help"], 0), (["identify", "--help"], 0), (["identify"], 2),
    (["identify", "a.wav", "--top-k", "many"], 2), (["identify", "a.wav", "--format", "xml"], 2),
    (["serve", "--help"], 0), (["serve", "--port", "x"], 2), (["corpus", "--help"], 0), (["corpus", "a.wav"], 2),
])
def test_help_and_argument_errors_come_before_any_model_code(argv, status):
    """Nothing of MLX, mlx-audio, torch or transformers is imported to answer these (README "Start-up")."""
    code = (
        "import sys\nfrom mlx_audio_lid import cli\n"
        "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit as stop:\n    print(stop.code)\n"
        "heavy = {'mlx', 'mlx_audio', 'torch', 'transformers', 'scipy'}\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.split('.')[0] == 'mlx'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[-3:-1] == [str(status), "[]"], done.stdout[-2000:] + done.stderr[-2000:]


def test_the_default_model_is_voxlingua107_ecapa_from_the_hub(capsys, folder, monkeypatch, tmp_path):
    """Without --model the CLI asks the Hub for SpeechBrain's VoxLingua107 ECAPA (offline here: an empty cache)."""
    from huggingface_hub import constants  # read when a download is asked for, not only at import

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code, out, err = run(capsys, str(folder / "en.wav"))
    assert code == 2 and out == ""
    assert "'speechbrain/lang-id-voxlingua107-ecapa'" in err and "--model path/to/folder" in err
