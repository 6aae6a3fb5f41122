"""An HTTP service for an exported model (FastAPI; `pip install "autotune[serve]"`), built by the recipe that made
it (its optional `serve(model_dir, **limits)`), from the parts here that every such app shares.

    app = create_app("models/digits", max_bytes=5 * 2**20)   # then: uvicorn.run(app), or `autotune serve`

Every app answers
    GET  /health    {"status": "ok", "model": name, "version": ..., and what the app adds}
    GET  /model     the model card (model.json: config, metrics, data fingerprint, versions, ...)
    POST /predict   what the recipe's app reads: image uploads (`autotune.vision.serving`), JSON rows
                    (`autotune.tabular.serving`), ...

A request body is read within a byte limit (`read_body`, `limited`); a rejected request gets a 4xx answer with a
JSON body {"detail": "what was wrong"} (`refused` for a `BadInput`); predicting runs in a worker thread
(`run_in_threadpool`), off the event loop, so that /health answers while a large request is being worked on.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import python_multipart  # noqa: F401  (starlette parses forms with it; without it, fail here, not per request)
from fastapi import FastAPI, HTTPException, Request

from autotune.errors import BadInput, UserError

__all__ = ["create_app", "model_app", "limited", "read_body", "refused"]


def create_app(model_dir: str | Path, **limits: int) -> FastAPI:
    """The FastAPI app of the exported model in `model_dir`: its recipe's `serve(model_dir, **limits)`. A recipe
    without serve(), or a limit its serve() does not take: a UserError, before anything listens."""
    from autotune.model_dir import recipe_function
    from autotune.calls import unknown_arguments

    serve, card = recipe_function(model_dir, "serve", f"autotune serve cannot answer for the model in {model_dir}")
    unknown = unknown_arguments(serve, limits, hidden=("model_dir",))
    if unknown:
        raise UserError(f"recipe {card.get('recipe')!r} serves the model in {model_dir} with {unknown}")
    return serve(str(model_dir), **limits)


def model_app(card: Mapping[str, Any], **health: Any) -> FastAPI:
    """A FastAPI app named after the model `card`, answering GET /health ({"status", "model", "version"} and
    `health`) and GET /model (the card); the recipe's app adds POST /predict."""
    app = FastAPI(title=f"autotune: {card.get('name', 'model')}", version=str(card.get("version")))

    @app.get("/health")
    def health_check() -> dict[str, Any]:
        return {"status": "ok", "model": card.get("name"), "version": card.get("version"), **health}

    @app.get("/model")
    def model_card() -> Mapping[str, Any]:
        return card

    return app


DRAINED_BYTES = 256 * 2**20  # a refused body is read up to this much, then the connection is dropped


async def limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk, refused (413) once it is over `limit` bytes: by its Content-Length
    before reading it, or, without one, once it has been read past the limit. A refused body is still read to its
    end (up to DRAINED_BYTES, not kept), since a client that sends its whole body before reading the answer
    (urllib, requests) would otherwise get a connection reset instead of the 413."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        if int(declared) <= DRAINED_BYTES:
            await _drain(request.stream())
        raise HTTPException(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    seen = 0
    stream = request.stream()
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            await _drain(stream, seen)
            raise HTTPException(413, f"request body over the limit of {limit} bytes")
        yield chunk


async def _drain(stream: AsyncIterator[bytes], seen: int = 0) -> None:
    """Read the rest of a refused body, up to DRAINED_BYTES in all."""
    async for chunk in stream:
        seen += len(chunk)
        if seen > DRAINED_BYTES:
            return


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, within `limit` bytes (`limited`)."""
    return b"".join([chunk async for chunk in limited(request, limit)])


def refused(err: BadInput, name: str | None = None) -> HTTPException:
    """The 4xx answer to an input the model cannot be given: the BadInput's status and message (after `name`, the
    upload's, when given)."""
    return HTTPException(err.status, f"{name}: {err}" if name else str(err))
