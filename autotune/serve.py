"""An HTTP service for an exported model (FastAPI; `pip install "autotune[serve]"`).

    app = create_app("models/digits", max_bytes=5 * 2**20)   # then: uvicorn.run(app), or `autotune serve`

    POST /predict   multipart/form-data: one image as `file` -> one JSON object, or several as `files` -> a list;
                    `?top_k=5` lists more labels. Each object: {"file", "label", "probability", "top_k": [...]}
    GET  /health    {"status": "ok", "model": name, "version": ...}
    GET  /model     the model card (model.json: config, metrics, labels, data fingerprint, versions, ...)

Uploads are held in memory only, never written to disk, and checked before they reach the model: the body's
size, the field names, the number of files, each file's content type, size and pixel count, and that it decodes.
A rejected request gets a 4xx answer with a JSON body {"detail": "what was wrong"}. Decoding, resizing and
predicting run in a worker thread, off the event loop: /health answers while a large batch is being decoded.
"""
from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import python_multipart  # noqa: F401  (starlette parses forms with it; without it, fail here, not per request)
from fastapi import FastAPI, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from autotune.inference import IMAGE_FORMATS, MAX_PIXELS, BadInput, image_pixels, records
from autotune.vision.predictor import Predictor, load_model

__all__ = ["create_app", "MAX_BYTES", "MAX_FILES"]

MAX_BYTES = 5 * 2**20  # per uploaded file
MAX_FILES = 16  # per request
FORM_OVERHEAD = 64 * 2**10  # multipart boundaries and headers, on top of the files themselves
CONTENT_TYPES = {f"image/{name.lower()}" for name in IMAGE_FORMATS} | {"image/jpg", "application/octet-stream"}


class InMemoryParser(MultiPartParser):
    """Starlette's multipart parser, but a file never rolls over to a temporary file on disk (the request's
    body limit already bounds its size)."""

    spool_max_size = sys.maxsize


class _TooLarge(Exception):
    pass


def create_app(
    model: str | Path | Predictor,
    *,
    max_bytes: int = MAX_BYTES,
    max_files: int = MAX_FILES,
    max_pixels: int = MAX_PIXELS,
) -> FastAPI:
    """The FastAPI app serving `model` (an exported model directory or a loaded Predictor)."""
    predictor = load_model(model) if isinstance(model, (str, Path)) else model
    body_limit = max_files * max_bytes + FORM_OVERHEAD

    async def limited(request: Request) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > body_limit:
                raise _TooLarge
            yield chunk

    async def uploads(request: Request) -> tuple[list[UploadFile], bool]:
        """The uploaded files (checked field names) and whether they came as `files` (answer with a list)."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise HTTPException(415, f"send images as multipart/form-data (field `file` or `files`), "
                                     f"not {content_type or 'a body without a content type'}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            raise HTTPException(413, f"request body of {declared} bytes is over the limit of {body_limit} bytes")
        parser = InMemoryParser(request.headers, limited(request), max_files=max_files, max_fields=max_files,
                                max_part_size=FORM_OVERHEAD)
        try:
            form = await parser.parse()
        except _TooLarge:
            raise HTTPException(413, f"request body over the limit of {body_limit} bytes") from None
        except MultiPartException as err:
            raise HTTPException(400, f"multipart body refused: {err.message}") from None
        fields = form.multi_items()
        for name, value in fields:
            if name not in ("file", "files"):
                raise HTTPException(400, f"unexpected field {name!r}: send one image as `file` or several as `files`")
            if not isinstance(value, UploadFile):
                raise HTTPException(400, f"field {name!r} holds text, not an uploaded file")
        names = [name for name, _ in fields]
        if not names:
            raise HTTPException(400, "no image uploaded: send one image as `file` or several as `files`")
        if "file" in names and (len(names) > 1):
            raise HTTPException(400, "`file` takes exactly one image: send several as `files`")
        return [value for _, value in fields], names[0] == "files"

    async def read(upload: UploadFile, index: int) -> tuple[str, bytes]:
        """The name and bytes of one upload (in memory already), after its content type and size are checked."""
        name = upload.filename or f"upload {index}"
        content_type = (upload.content_type or "application/octet-stream").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            raise HTTPException(415, f"{name}: content type {content_type!r} is not an image type "
                                     f"({', '.join(sorted(CONTENT_TYPES))})")
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HTTPException(413, f"{name}: file over the limit of {max_bytes} bytes")
        return name, data

    def answer(named: list[tuple[str, bytes]], top_k: int) -> list[dict[str, Any]]:
        """Decode, convert and predict: CPU-bound, so it runs in a worker thread, never on the event loop."""
        images = []
        for name, data in named:
            try:
                images.append(image_pixels(data, predictor.input_shape, predictor.resize, max_pixels=max_pixels))
            except BadInput as err:
                raise HTTPException(err.status, f"{name}: {err}") from None
        return records(predictor, images, [name for name, _ in named], top_k)

    app = FastAPI(title=f"autotune: {predictor.card.get('name', 'model')}", version=str(predictor.card.get("version")))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": predictor.card.get("name"), "version": predictor.card.get("version"),
                "labels": len(predictor.labels)}

    @app.get("/model")
    def card() -> dict[str, Any]:
        return predictor.card

    @app.post("/predict")
    async def predict(request: Request, top_k: int = Query(3, ge=1, le=1000)) -> Any:
        files, as_list = await uploads(request)
        named = [await read(upload, i) for i, upload in enumerate(files)]
        rows = await run_in_threadpool(answer, named, min(top_k, len(predictor.labels)))
        return rows if as_list else rows[0]

    return app
