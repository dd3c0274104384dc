"""`mlx_audio_lid serve`: spoken language ID over HTTP (FastAPI + uvicorn, as mlx-audio's server).

    POST /detect-language?encode=true|false   whisper-asr-webservice's route: multipart `audio_file`
    POST /v1/audio/language                   multipart `file` (+ languages, top_k, segments,
                                              min_probability): the CLI's JSON record
    GET  /health, GET /v1/models

One model is loaded once; concurrent requests share padded batches (batcher.py).
Needs the `serve` extra: pip install 'mlx-audio-lid[serve]'.
"""

import sys

from .app import create_app

__all__ = ["create_app", "main"]


def main(args) -> int:
    """Load the model, then serve until interrupted (args: the `serve` subcommand's namespace)."""
    import uvicorn

    from ..cli import load_model, one_line

    try:
        model = load_model(args.model, args.dtype)
        app = create_app(model, args.model, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         max_upload_mb=args.max_upload_mb)
    except Exception as error:
        print(f"mlx_audio_lid: error: {one_line(error)}", file=sys.stderr)
        return 2
    # One process, one event loop: the model lives in this process and its batcher thread.
    uvicorn.run(app, host=args.host, port=args.port, workers=1, loop="asyncio", log_level=args.log_level)
    return 0
