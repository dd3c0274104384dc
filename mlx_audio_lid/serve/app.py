"""The HTTP routes: whisper-asr-webservice's /detect-language, an OpenAI-style language route,
/health and /v1/models, over one loaded model shared through the batcher.

Every upload is decoded by its own request (in a thread of the server's pool) before it is
queued, so undecodable, empty or NaN audio fails alone with a 400; the model sees only clean
16 kHz float32 clips. Every error body is JSON: {"detail": "<what was wrong>"}.
"""

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Optional

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..audio import SAMPLE_RATE, load_audio
from ..cli import file_record, one_line
from .batcher import Batcher
from .upload_limit import UploadLimit
from .whisper_codes import detect_language_answer

MIB = 1024 * 1024


def decode_upload(data: bytes, encode: bool) -> np.ndarray:
    """An upload -> 16 kHz mono float32. encode=False: raw 16 kHz mono s16le PCM, as Whisper's clients send."""
    if not data:
        raise ValueError("empty upload: the file has no bytes")
    if encode:
        source = data
    else:
        if len(data) % 2:
            raise ValueError(f"encode=false takes raw 16-bit PCM, two bytes a sample; got an odd {len(data)} bytes")
        source = np.frombuffer(data, dtype="<i2")
    samples, _ = load_audio(source, SAMPLE_RATE)
    if len(samples) == 0:
        raise ValueError("the upload holds no audio samples")
    return samples


async def _clip(upload: UploadFile, encode: bool = True) -> np.ndarray:
    data = await upload.read()  # already spooled by the form parser, within the body limit
    try:
        return await run_in_threadpool(decode_upload, data, encode)
    except Exception as error:  # whatever the decoder says, the bytes were the client's
        raise HTTPException(400, f"{upload.filename or 'upload'}: {one_line(error)}") from None


def _validation_message(error: RequestValidationError) -> str:
    """FastAPI's error list as one sentence: `audio_file (multipart form field): Field required`."""
    where = {"body": "multipart form field", "query": "query parameter"}
    parts = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        kind = where.get(location[0], location[0]) if location else "request"
        name = location[-1] if len(location) > 1 else ""
        parts.append(f"{name} ({kind}): {item.get('msg', 'invalid')}".strip())
    return "; ".join(parts) or "invalid request"


def create_app(model, model_name: str, max_batch: int = 16, max_wait_ms: float = 10.0,
               max_upload_mb: float = 100.0) -> FastAPI:
    """The server's FastAPI app around a loaded model (see mlx_audio_lid.serve.main)."""
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    batcher = Batcher(model, max_batch=max_batch, max_wait=max_wait_ms / 1000)
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            batcher.close()

    app = FastAPI(title="mlx-audio-lid", summary="Spoken language identification on MLX", lifespan=lifespan)
    app.add_middleware(UploadLimit, limit=int(max_upload_mb * MIB), message=(
        f"upload larger than this server's limit of {max_upload_mb:g} MiB (mlx_audio_lid serve --max-upload-mb)"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return JSONResponse({"detail": _validation_message(error)}, status_code=422)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception):
        return JSONResponse({"detail": f"server error: {one_line(error)}"}, status_code=500)

    async def predict(clip: np.ndarray, **options):
        try:
            return await asyncio.wrap_future(batcher.submit(clip, options))
        except ValueError as error:  # identify's verdict on this clip or these options
            raise HTTPException(400, one_line(error)) from None

    @app.post("/detect-language")
    async def detect_language(
        audio_file: UploadFile = File(..., description="the audio (any supported format; raw PCM with encode=false)"),
        encode: bool = Query(True, description="true: a file in any supported format; false: raw 16 kHz s16le PCM"),
    ):
        """whisper-asr-webservice's language detection: same field, parameter and answer."""
        prediction = await predict(await _clip(audio_file, encode))
        return detect_language_answer(prediction)

    @app.post("/v1/audio/language")
    async def audio_language(
        file: UploadFile = File(..., description="the audio, in any supported format"),
        languages: Optional[str] = Form(None, description="candidates, comma separated: en,ru or eng,rus or English"),
        top_k: int = Form(5, ge=1, description="how many (language, probability) pairs to list"),
        segments: bool = Form(False, description="add the timeline of (start, end, language) segments"),
        min_probability: Optional[float] = Form(None, ge=0, le=1, description="answer 'und' below this"),
    ):
        """The record `mlx_audio_lid identify --format json` writes for this file."""
        prediction = await predict(await _clip(file), languages=languages, top_k=top_k, segments=segments,
                                   min_probability=min_probability)
        return file_record(file.filename or "upload", prediction)

    @app.get("/health")
    async def health():
        """Liveness, and what the batcher has done: requests answered, model calls, largest batch."""
        return {"status": "ok", "model": model_name, **batcher.stats()}

    @app.get("/v1/models")
    async def models():
        """The one loaded model, in the OpenAI list format mlx-audio's server uses."""
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": started,
                                            "owned_by": "mlx-audio-lid", "labels": len(model.labels)}]}

    return app
