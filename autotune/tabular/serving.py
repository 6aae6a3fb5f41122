"""The HTTP app of an exported tabular model (`autotune serve`, through the tabular recipe's `serve`).

    app = create_app("models/tabular", max_rows=1000)   # then: uvicorn.run(app)

    POST /predict   application/json {"rows": [{column: value, ...}, ...]} -> {"predictions": [...]}, one per row
                    in order: {"label", "probability"} (classification; `?top_k=3` adds "top_k", the 3 most
                    probable labels) or {"value"} (regression; `?top_k` is a 400). A top_k that is not a whole
                    number from 1 to 1000: 422, one text detail (as the image server's)
    GET  /health    {"status": "ok", "model": name, "version": ..., "task": "classification" or "regression"}
    GET  /model     what a client needs to call the model (`autotune.serve.public_card`: its task, target, labels,
                    columns by kind and the categories each takes, but a column's of nearly a value per training
                    row, test metrics, ...; not the scalers, the local paths or the search history of model.json)

A row is read as `autotune.tabular.rows` reads one (a missing value is null, or a text training read as missing:
data.missing's, else pandas' "", "NA", ...; other keys are ignored). A category the model did not see is encoded
as "unknown", as in its test metrics, and named in the row's prediction: "unseen_categories": {column: value}. A
missing column, a wrong type or an infinite number: 422, {"detail": "row 0, column 'x': ..."}. A body that is not
JSON, or not an object holding a `rows` list: 400; not sent as application/json: 415; over `max_bytes` bytes or
more than `max_rows` rows: 413. Reading the JSON and predicting run in a worker thread, off the event loop.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from autotune.errors import UserError
from autotune.serve import model_app, read_body, refused
from autotune.tabular.rows import BadRow, TabularPredictor

__all__ = ["create_app", "MAX_BYTES", "MAX_ROWS"]

MAX_BYTES = 10 * 2**20  # per request
MAX_ROWS = 10_000  # per request
EXAMPLE = '{"rows": [{"column": value, ...}, ...]}'


def create_app(model: str | Path | TabularPredictor, *, max_bytes: int | None = None,
               max_rows: int | None = None) -> FastAPI:
    """The FastAPI app serving `model` (an exported model directory or a loaded TabularPredictor). The limits: the
    largest request body in bytes (default MAX_BYTES) and the most rows per request (MAX_ROWS); None takes the
    default."""
    predictor = model if isinstance(model, TabularPredictor) else TabularPredictor(model)
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    max_rows = MAX_ROWS if max_rows is None else max_rows

    def answer(body: bytes, top_k: int | None) -> dict[str, list[dict[str, Any]]]:
        """Parse, check and predict: CPU-bound, so it runs in a worker thread, never on the event loop."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise HTTPException(400, f"the body is not JSON ({err}); send {EXAMPLE}") from None
        rows = payload.get("rows") if isinstance(payload, dict) else None
        if not isinstance(rows, list):
            raise HTTPException(400, f"the body is not an object holding a `rows` list; send {EXAMPLE}")
        if len(rows) > max_rows:
            raise HTTPException(413, f"{len(rows)} rows are over the limit of {max_rows} rows per request")
        try:
            return {"predictions": predictor.predict(rows, top_k=top_k)}
        except BadRow as err:
            raise refused(err) from None

    app = model_app(predictor.card, task=predictor.card.get("task"))

    @app.post("/predict")
    async def predict(request: Request,
                      top_k: int | None = Query(None, ge=1, le=1000)) -> dict[str, list[dict[str, Any]]]:
        try:
            predictor.check_top_k(top_k, given_as="top_k")
        except UserError as err:
            raise HTTPException(400, f"{err} from the query") from None
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise HTTPException(415, f"send the rows as application/json ({EXAMPLE}), "
                                     f"not {content_type or 'a body without a content type'}")
        return await run_in_threadpool(answer, await read_body(request, max_bytes), top_k)

    return app
