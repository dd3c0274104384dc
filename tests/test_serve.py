"""`mlx_audio_lid serve` over real HTTP on loopback: a uvicorn subprocess on a free port, a tiny
model, espeak-ng speech. whisper-asr-webservice's request shapes (both `encode` values), the
OpenAI-style route, every kind of bad request, and a bounded load test whose every answer must
equal the library's answer for that clip alone, with batches of more than one request.
"""

import http.client
import time
from concurrent.futures import Future

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the server tests need the serve extra: pip install 'mlx-audio-lid[serve]'")
httpx = pytest.importorskip("httpx", reason="the server tests need httpx (the test extra)")

import mlx_audio_lid as lid  # noqa: E402
from mlx_audio_lid import cli  # noqa: E402
from mlx_audio_lid.audio import load_audio  # noqa: E402
from mlx_audio_lid.labels import model_languages  # noqa: E402
from mlx_audio_lid.serve import batcher as batcher_module  # noqa: E402
from mlx_audio_lid.serve.whisper_codes import detect_language_answer, whisper_code  # noqa: E402

from benchmarks.serve_load import Call, ServerProcess, load_test, same_detection, wav_bytes  # noqa: E402
from references import ecapa as reference_ecapa  # noqa: E402

import conversion_sources  # noqa: E402
import speech  # noqa: E402

MODEL = reference_ecapa.FIXTURES / "voxlingua107_tiny"  # a SpeechBrain folder, as published
LIMIT_MIB = 1  # the test server's --max-upload-mb
TOLERANCE = 1e-4  # a clip in a padded batch vs alone: float32 rounding (measured up to 1.5e-5 with OpenBLAS, 8e-6 with MKL)
OPTIONS = {"languages": "en,de,ru", "top_k": "3"}  # form fields of the OpenAI-style route in the load test


@pytest.fixture(scope="module")
def model():
    return lid.load(MODEL, dtype="float32")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with ServerProcess(MODEL, "--max-batch", "8", "--max-wait-ms", "50", "--max-upload-mb", str(LIMIT_MIB),
                       "--dtype", "float32", log=log) as running:
        yield running
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]  # no request ever broke the server


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """name -> bytes: speech as WAV, FLAC, MP3, Ogg; the English clip as raw 16 kHz s16le PCM; bad uploads."""
    root = tmp_path_factory.mktemp("audio")
    found = {"en.wav": speech.speak("en", root / "en.wav").read_bytes()}
    found["de.flac"] = speech.convert(speech.speak("de", root / "de.wav"), "flac").read_bytes()
    found["ru.mp3"] = speech.convert(speech.speak("ru", root / "ru.wav"), "mp3").read_bytes()
    found["ru.ogg"] = speech.convert(root / "ru.wav", "ogg").read_bytes()
    samples, _ = load_audio(root / "en.wav")
    found["en.pcm"] = (samples * 32767).astype("<i2").tobytes()
    nan = np.sin(np.arange(16000) / 5).astype(np.float32)
    nan[5000] = np.nan
    soundfile = pytest.importorskip("soundfile")
    soundfile.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    found["nan.wav"] = (root / "nan.wav").read_bytes()
    found["short.wav"] = wav_bytes(np.full(200, 0.1))  # 12.5 ms, below the model's 40 ms
    found["text.wav"] = b"these bytes are not audio " * 40
    found["odd.pcm"] = found["en.pcm"][:1001]
    return found


def post(server, route, field, name, content, params=None, data=None):
    response = httpx.post(server.url + route, params=params, data=data, files={field: (name, content)}, timeout=120)
    return response.status_code, response.json()


def same_record(got: dict, want: dict) -> bool:
    """An HTTP record equals the CLI's record, probabilities to float32 rounding."""
    def close(a, b):
        return abs(a - b) <= TOLERANCE if isinstance(a, float) else a == b

    def same(a, b):
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return close(a, b)

    return same(got, want)


# -- whisper-asr-webservice's /detect-language ----------------------------------------------

@pytest.mark.parametrize("name", ["en.wav", "de.flac", "ru.mp3", "ru.ogg"])
def test_detect_language_takes_any_supported_file(server, model, files, name):
    status, body = post(server, "/detect-language", "audio_file", name, files[name])
    assert status == 200, body
    assert same_detection(body, lid.identify(model, files[name]))


def test_detect_language_takes_raw_pcm_as_bazarr_sends_it(server, model, files):
    # Bazarr: requests.post(f"{endpoint}/detect-language", params={"encode": "false"},
    #                       files={"audio_file": pcm_bytes}) -- no file name, no content type
    response = httpx.post(server.url + "/detect-language", params={"encode": "false"},
                          files={"audio_file": files["en.pcm"]}, timeout=120)
    assert response.status_code == 200, response.text
    pcm = np.frombuffer(files["en.pcm"], dtype="<i2")
    assert same_detection(response.json(), lid.identify(model, pcm, sample_rate=16000))


def test_detect_language_answer_for_every_family(tmp_path, files):
    """Each family's labels come out as Whisper's two-letter codes and lower-case English names."""
    mms = lid.load(conversion_sources.tiny_mms(tmp_path / "mms"))  # ISO 639-3 labels: ara, cmn, eng, ...
    codes = {label: whisper_code(info.code) for label, info in model_languages(mms).items()}
    assert codes == {"ara": "ar", "cmn": "zh", "eng": "en", "spa": "es", "fra": "fr", "rus": "ru", "deu": "de"}
    vox = lid.load(MODEL)  # VoxLingua107's codes, with the withdrawn iw and jw
    changed = {label: whisper_code(info.code) for label, info in model_languages(vox).items()
               if whisper_code(info.code) != label}
    assert changed == {"iw": "he", "jw": "jv"}
    common = lid.load(reference_ecapa.FIXTURES / "commonlanguage_tiny")  # English names as labels
    codes = {label: whisper_code(info.code) for label, info in model_languages(common).items()}
    assert codes["English"] == "en" and codes["Chinese_Taiwan"] == "zh" and codes["Kabyle"] == "kab"
    for family in (mms, vox, common):
        prediction = lid.identify(family, files["en.wav"])
        assert detect_language_answer(prediction) == {
            "detected_language": prediction.name.lower(), "language_code": whisper_code(prediction.code),
            "confidence": prediction.probability}


@pytest.mark.parametrize("code, expected", [("eng", "en"), ("cmn", "zh"), ("heb", "he"), ("jav", "jv"),
                                            ("tgl", "tl"), ("arb", "ar"), ("haw", "haw"), ("und", "und")])
def test_whisper_codes(code, expected):
    assert whisper_code(code) == expected


# -- the OpenAI-style route -----------------------------------------------------------------

@pytest.mark.parametrize("fields, options", [
    ({}, {}),
    ({"languages": "en,de", "top_k": "2", "segments": "true"}, {"languages": "en,de", "top_k": 2, "segments": True}),
    ({"min_probability": "1.0"}, {"min_probability": 1.0}),
])
def test_language_route_answers_the_cli_record(server, model, files, fields, options):
    status, body = post(server, "/v1/audio/language", "file", "de.flac", files["de.flac"], data=fields)
    assert status == 200, body
    assert same_record(body, cli.file_record("de.flac", lid.identify(model, files["de.flac"], **options)))
    if "min_probability" in options:
        assert body["language"] == "und"


# -- bad requests ---------------------------------------------------------------------------

BAD_REQUESTS = {
    "not audio": ("/detect-language", "audio_file", "text.wav", None, None, 400, "not audio that can be decoded"),
    "empty": ("/detect-language", "audio_file", "empty.wav", None, None, 400, "empty upload"),
    "NaN samples": ("/v1/audio/language", "file", "nan.wav", None, None, 400, "NaN"),
    "too short": ("/detect-language", "audio_file", "short.wav", None, None, 400, "shorter than this model's minimum"),
    "odd PCM bytes": ("/detect-language", "audio_file", "odd.pcm", {"encode": "false"}, None, 400, "16-bit PCM"),
    "empty PCM": ("/detect-language", "audio_file", "empty.wav", {"encode": "false"}, None, 400, "empty upload"),
    "wrong field": ("/detect-language", "file", "en.wav", None, None, 422, "audio_file (multipart form field)"),
    "wrong field, OpenAI route": ("/v1/audio/language", "audio_file", "en.wav", None, None, 422, "file (multipart"),
    "bad encode": ("/detect-language", "audio_file", "en.wav", {"encode": "maybe"}, None, 422, "encode (query"),
    "top_k 0": ("/v1/audio/language", "file", "en.wav", None, {"top_k": "0"}, 422, "top_k"),
    "top_k not a number": ("/v1/audio/language", "file", "en.wav", None, {"top_k": "many"}, 422, "top_k"),
    "min_probability 2": ("/v1/audio/language", "file", "en.wav", None, {"min_probability": "2"}, 422,
                          "min_probability"),
    "unknown language": ("/v1/audio/language", "file", "en.wav", None, {"languages": "xx"}, 400,
                         "unknown language 'xx'"),
    "language the model lacks": ("/v1/audio/language", "file", "en.wav", None, {"languages": "Kabyle"}, 400,
                                 "this model has no label for 'Kabyle'"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_is_a_4xx_naming_the_problem(server, files, case):
    route, field, name, params, data, status, message = BAD_REQUESTS[case]
    got_status, body = post(server, route, field, name, files.get(name, b""), params=params, data=data)
    assert got_status == status and message in body["detail"], body
    assert httpx.get(server.url + "/health", timeout=30).json()["status"] == "ok"


def test_no_body_at_all_is_a_422(server):
    response = httpx.post(server.url + "/detect-language", timeout=30)
    assert response.status_code == 422 and "audio_file" in response.json()["detail"]


def _multipart_start(boundary: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio_file\"; filename=\"big.pcm\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()


def _response(connection: http.client.HTTPConnection):
    response = connection.getresponse()
    return response.status, response.read()


def test_oversize_upload_declared_by_content_length_is_refused_unread(server):
    """A body declared over the limit gets 413 before any of it is sent."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.putrequest("POST", "/detect-language?encode=false")
        connection.putheader("Content-Type", "multipart/form-data; boundary=xyz")
        connection.putheader("Content-Length", str(50 * 1024 * 1024))
        connection.endheaders()
        status, body = _response(connection)
    finally:
        connection.close()
    assert status == 413 and b"limit of 1 MiB" in body


def test_oversize_chunked_upload_is_refused_while_it_arrives(server):
    """No Content-Length: the server counts the body as it comes and answers 413 before it ends."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.putrequest("POST", "/detect-language?encode=false")
        connection.putheader("Content-Type", "multipart/form-data; boundary=xyz")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        piece = b"\x00\x01" * 32768
        chunks = [_multipart_start("xyz")] + [piece] * (LIMIT_MIB * 16 + 4)  # the limit + 256 KiB
        for chunk in chunks:
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, body = _response(connection)  # the body's last chunk is never sent
    finally:
        connection.close()
    assert status == 413 and b"--max-upload-mb" in body
    assert server.alive()


# -- batching -------------------------------------------------------------------------------

def test_failing_batch_is_retried_clip_by_clip(model, files, monkeypatch):
    """If a batched identify call raises, each clip runs alone, so only the one at fault fails."""
    clips = [load_audio(files[name])[0] for name in ("en.wav", "de.flac", "ru.mp3")]
    poisoned = np.full(16000, 0.05, np.float32)
    real_identify = batcher_module.identify

    def identify(model, sources, **options):
        if any(source is poisoned for source in sources):
            raise ValueError("this clip is poisoned")
        return real_identify(model, sources, **options)

    monkeypatch.setattr(batcher_module, "identify", identify)
    batcher = batcher_module.Batcher(model, max_batch=8, max_wait=1.0)
    batcher.start()
    try:
        futures = [batcher.submit(c, {}) for c in clips[:2]] + [batcher.submit(poisoned, {})]
        futures += [batcher.submit(clips[2], {"languages": "en,ru"}), batcher.submit(clips[0], {"top_k": 2})]
        answers = [_outcome(future) for future in futures]
    finally:
        batcher.close()
    assert isinstance(answers[2], ValueError) and "poisoned" in str(answers[2])
    wanted = [lid.identify(model, clips[0]), lid.identify(model, clips[1]), None,
              lid.identify(model, clips[2], languages="en,ru"), lid.identify(model, clips[0], top_k=2)]
    for got, want in zip(answers, wanted):
        if want is not None:
            assert same_record(got.to_dict(), want.to_dict())
    stats = batcher.stats()
    assert stats["requests"] == 4 and stats["largest_batch"] == 1  # the two good ones of the first group, alone


def _outcome(future: Future, timeout: float = 120):
    try:
        return future.result(timeout=timeout)
    except Exception as error:
        return error


def test_load_every_answer_equals_the_library_alone(server, model, files):
    """8 clients x 25 requests of speech cut to different lengths, on both routes, with bad uploads mixed in."""
    speech_clips = [load_audio(files[name])[0] for name in ("en.wav", "de.flac", "ru.mp3")]
    clips = [wav_bytes(clip[: int(seconds * 16000)]) for clip in speech_clips for seconds in (1.2, 2.1, 3.0, 9.0)]
    alone = [lid.identify(model, clip) for clip in clips]
    with_options = [lid.identify(model, clip, languages="en,de,ru", top_k=3) for clip in clips]
    calls = []
    for i in range(8 * 25):
        clip = i % len(clips)
        if i % 10 == 9:
            calls.append(Call("/detect-language", "audio_file", files["short.wav" if i % 20 == 9 else "text.wav"]))
        elif i % 3 == 0:
            calls.append(Call("/v1/audio/language", "file", clips[clip], filename=f"clip{clip}.wav", data=OPTIONS))
        else:
            calls.append(Call("/detect-language", "audio_file", clips[clip]))
    before = server.health()
    began = time.monotonic()
    answers = load_test(server.url, calls, clients=8)
    after = server.health()
    assert len(answers) == len(calls) and time.monotonic() - began < 600
    for i, (call, answer) in enumerate(zip(calls, answers)):
        clip = i % len(clips)
        if i % 10 == 9:
            assert answer.status == 400, answer.body
        elif call.route == "/v1/audio/language":
            assert answer.status == 200, answer.body
            assert same_record(answer.body, cli.file_record(f"clip{clip}.wav", with_options[clip])), i
        else:
            assert answer.status == 200 and same_detection(answer.body, alone[clip]), (i, answer.body)
    answered = after["requests"] - before["requests"]
    assert answered == sum(1 for i in range(len(calls)) if i % 10 != 9)
    assert after["largest_batch"] > 1 and after["batches"] - before["batches"] < answered  # batches really formed


def test_health_and_models(server):
    health = httpx.get(server.url + "/health", timeout=30).json()
    assert health["status"] == "ok" and health["model"] == str(MODEL)
    models = httpx.get(server.url + "/v1/models", timeout=30).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == [str(MODEL)]
    assert models["data"][0]["labels"] == 107


def test_serve_with_a_missing_model_exits_2(capsys, tmp_path):
    assert cli.main(["serve", "--model", str(tmp_path / "nothing-here")]) == 2
    assert "no model folder" in capsys.readouterr().err
