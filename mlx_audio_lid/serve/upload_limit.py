"""The upload limit, enforced while the request body arrives, never after reading it all.

Recent FastAPI has its own `max_body_size`, counted the same way, but when Content-Length
declares too much it replaces whatever the app answers with a plain-text 413; here the answer
is the JSON every other error gets, and older FastAPI releases work too.
"""

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers


class UploadLimit:
    """ASGI middleware: 413 for a body over `limit` bytes.

    At once when Content-Length declares more (nothing is read); otherwise (chunked uploads,
    or a Content-Length that understates) as soon as the bytes received pass the limit.
    """

    def __init__(self, app, limit: int, message: str):
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # raised inside the form parser: FastAPI answers it as a 413
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted_receive, send)
