"""The HTTP app of an exported image classifier (`autotune serve`, through the image recipe's `serve`).

    app = create_app("models/digits", max_bytes=5 * 2**20)   # then: uvicorn.run(app)

    POST /predict   multipart/form-data: one image as `file` -> one JSON object, or several as `files` -> a list;
                    `?top_k=5` lists more labels. Each object: {"file", "label", "probability", "top_k": [...]}
    GET  /health    {"status": "ok", "model": name, "version": ..., "labels": how many}
    GET  /model     the model card (model.json: config, metrics, labels, data fingerprint, versions, ...)

Uploads are held in memory only, never written to disk, and checked before they reach the model: the body's
size, the field names, the number of files, each file's content type, size and pixel count, and that it decodes.
A rejected request gets a 4xx answer with a JSON body {"detail": "what was wrong"}. Decoding, resizing and
predicting run in a worker thread, off the event loop: /health answers while a large batch is being decoded.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from python_multipart.exceptions import FormParserError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from autotune.errors import BadInput
from autotune.serve import limited, model_app, over_limit, refused
from autotune.vision.inference import IMAGE_FORMATS, MAX_PIXELS, image_pixels, records
from autotune.vision.predictor import Predictor, load_model

__all__ = ["create_app", "InMemoryParser", "MAX_BYTES", "MAX_FILES"]

MAX_BYTES = 5 * 2**20  # per uploaded file
MAX_FILES = 16  # per request
FORM_OVERHEAD = 64 * 2**10  # multipart boundaries and headers, on top of the files themselves
CONTENT_TYPES = {f"image/{name.lower()}" for name in IMAGE_FORMATS} | {"image/jpg", "application/octet-stream"}


class InMemoryParser(MultiPartParser):
    """Starlette's multipart parser, but a file never rolls over to a temporary file on disk (the request's
    body limit already bounds its size)."""

    spool_max_size = sys.maxsize


def create_app(
    model: str | Path | Predictor,
    *,
    max_bytes: int | None = None,
    max_files: int | None = None,
    max_pixels: int | None = None,
) -> FastAPI:
    """The FastAPI app serving `model` (an exported model directory or a loaded Predictor). The limits: the largest
    image file in bytes (default MAX_BYTES), the most images per request (MAX_FILES), the largest image in pixels,
    width x height (MAX_PIXELS); None takes the default."""
    predictor = load_model(model) if isinstance(model, (str, Path)) else model
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    max_files = MAX_FILES if max_files is None else max_files
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    body_limit = max_files * max_bytes + FORM_OVERHEAD

    async def uploads(request: Request) -> tuple[list[UploadFile], bool]:
        """The uploaded files (checked field names) and whether they came as `files` (answer with a list)."""
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):  # media types are case-insensitive
            raise HTTPException(415, f"send images as multipart/form-data (field `file` or `files`), "
                                     f"not {content_type or 'a body without a content type'}")
        parser = InMemoryParser(request.headers, limited(request, body_limit), max_files=max_files,
                                max_fields=max_files, max_part_size=FORM_OVERHEAD)
        try:
            form = await parser.parse()
        except MultiPartException as err:
            raise HTTPException(400, f"multipart body refused: {err.message}") from None
        except FormParserError as err:  # python-multipart's own, which Starlette 0.46 lets through
            raise HTTPException(400, f"multipart body refused: {err}") from None
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
            raise over_limit(f"{name}: file", max_bytes)
        return name, data

    def answer(named: list[tuple[str, bytes]], top_k: int) -> list[dict[str, Any]]:
        """Decode, convert and predict: CPU-bound, so it runs in a worker thread, never on the event loop."""
        images = []
        for name, data in named:
            try:
                images.append(image_pixels(data, predictor.input_shape, predictor.resize, max_pixels=max_pixels))
            except BadInput as err:
                raise refused(err, name) from None
        return records(predictor, images, [name for name, _ in named], top_k)

    app = model_app(predictor.card, labels=len(predictor.labels))

    @app.post("/predict")
    async def predict(request: Request, top_k: int = Query(3, ge=1, le=1000)) -> Any:
        files, as_list = await uploads(request)
        named = [await read(upload, i) for i, upload in enumerate(files)]
        rows = await run_in_threadpool(answer, named, min(top_k, len(predictor.labels)))
        return rows if as_list else rows[0]

    return app
