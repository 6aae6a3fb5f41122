"""An HTTP service for an exported model (FastAPI; `pip install "autotune[serve]"`), built by the recipe that made
it (its optional `serve(model_dir, **limits)`), from the parts here that every such app shares.

    app = create_app("models/digits", max_bytes=5 * 2**20)   # then: uvicorn.run(app), or `autotune serve`

Every app answers
    GET  /health    {"status": "ok", "model": name, "version": ..., and what the app adds}; HEAD /health too
    GET  /model     what a client needs to call the model (`public_card`: name, version, task, labels, input
                    shape or columns, test metrics, ...; no local path, no search history); the whole model card
                    (model.json) with `create_app(full_card=True)` (`autotune serve --full-card`)
    POST /predict   what the recipe's app reads: image uploads (`autotune.vision.serving`), JSON rows
                    (`autotune.tabular.serving`), ...
and each answer carries the header `X-Model-Version: <version>`, the version that made it. `create_app` serves a
canonical model (`models/<name>`, a link to its current version) as TF Serving serves a model's base path: it
follows the link to each version an export promotes (`ModelServer`).

A request body is read within a byte limit and a read timeout (`read_body`, `limited`); a rejected request gets a
4xx answer with a JSON body {"detail": "what was wrong"} (`refused` for a `BadInput`); predicting runs in a worker
thread (`run_in_threadpool`), off the event loop, so that /health answers while a large request is being worked on.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import reprlib
import threading
import time
from collections import ChainMap
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ForwardRef, get_args

import fastapi
import python_multipart  # noqa: F401  (starlette parses forms with it; without it, fail here, not per request)
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autotune.calls import unknown_arguments
from autotune.errors import BadInput, UserError
from autotune.model_dir import pinned, recipe_calls, recipe_function

__all__ = ["FOLLOW_SECONDS", "PUBLIC_CARD", "READ_TIMEOUT", "ModelServer", "ResolvedRoute", "create_app", "model_app",
           "limited", "over_limit", "public_card", "read_body", "refused", "unresolved_parameters"]

FOLLOW_SECONDS = 2.0  # a followed canonical model's link is looked at, on a request, at most this often
READ_TIMEOUT = 30.0  # seconds a request body may send nothing before its 408 (`create_app(read_timeout=)`)
READ_TIMEOUT_KEY = "autotune.read_timeout"  # the ASGI scope's key that carries a ModelServer's read timeout
FULL_CARD_KEY = "autotune.full_card"  # the ASGI scope's key: true when GET /model answers the whole card
# the card's keys GET /model answers by default: what a client needs to call the model, its test metrics and date
PUBLIC_CARD = ("name", "version", "task", "target", "labels", "input_shape", "resize", "columns", "categories",
               "missing_texts", "test_metrics", "created")
PUBLIC_COLUMNS = ("numeric", "categorical")  # a tabular card's column kinds a row gives
BYTES_OPTION = "--max-upload-mb"  # `autotune serve`'s option for a recipe's serve(max_bytes=)

log = logging.getLogger("autotune")


def create_app(model_dir: str | Path, *, follow: bool = True, read_timeout: float = READ_TIMEOUT,
               full_card: bool = False, **limits: int) -> ModelServer:
    """The ASGI app serving the exported model in `model_dir` (run it with `uvicorn.run(app)`, mount it in a larger
    app, test it with Starlette's TestClient): its recipe's `serve(version folder, **limits)` behind a
    `ModelServer`, which names the version in each answer and, with `follow`, follows a canonical model's link to
    each version an export promotes; a request body that sends nothing for `read_timeout` seconds gets a 408
    (`limited`); GET /model answers the card's `public_card`, or with `full_card` the whole card (its local paths,
    search history, library versions, a tabular model's scalers). A recipe without serve(), or a limit its serve()
    does not take: a UserError, before anything listens. The version-switch lines go to the `autotune` logger: a
    process embedding the app configures it (`logging.getLogger("autotune")`) to see them."""
    return ModelServer(model_dir, limits, follow=follow, read_timeout=read_timeout, full_card=full_card)


@dataclass(frozen=True)
class Served:
    """One loaded version: its recipe's app, the version its card names, and the folder it was loaded from."""

    app: ASGIApp
    version: str
    folder: Path


class ModelServer:
    """An ASGI app that hands each request to the recipe app of the version being served (`app`, `version`), adding
    the header X-Model-Version to each answer.

    Following a canonical model (`model_dir` a link, `follow` true): on a request, at most every FOLLOW_SECONDS, it
    looks where the link points (`pinned`: resolved once, so that card and weights come from the same version).
    At another version folder, it loads that version in a worker thread while the current one keeps answering,
    then swaps it in for the requests that come after (those in flight finish on the old one) and logs one line on
    the `autotune` logger. A version that cannot be loaded is logged in one line and not tried again until the
    link moves. A plain folder is served as it was loaded.

    With `full_card`, the recipe's app answers GET /model with the whole card (`model_app`, told by the request's
    scope: FULL_CARD_KEY), not its public part."""

    def __init__(self, model_dir: str | Path, limits: Mapping[str, int], *, follow: bool = True,
                 read_timeout: float = READ_TIMEOUT, full_card: bool = False) -> None:
        self.model_dir = Path(model_dir)
        self.read_timeout = read_timeout
        self.full_card = full_card
        self.follows = follow and self.model_dir.is_symlink()
        self._limits = dict(limits)
        self._served = self._load(pinned(self.model_dir))
        self._seen = self._served.folder  # where the link pointed when last looked at
        self._looked = time.monotonic()
        self._loading = False

    @property
    def app(self) -> ASGIApp:
        """The recipe's app (FastAPI) of the version being served."""
        return self._served.app

    @property
    def version(self) -> str:
        """The version being served (its card's `version`)."""
        return self._served.version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan, websocket: the recipe app's
            await self._served.app(scope, receive, send)
            return
        if self.follows:
            self._look()
        served = self._served  # this request's version, whatever is swapped in while it is answered
        scope = {**scope, READ_TIMEOUT_KEY: self.read_timeout,  # for `limited`, in the recipe's app
                 FULL_CARD_KEY: self.full_card}  # for GET /model, in `model_app`
        header = (b"x-model-version", served.version.encode())

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await served.app(scope, receive, send_with_version)

    def _look(self) -> None:
        """Start loading the version the link points to when it has moved (looked at most every FOLLOW_SECONDS,
        never while a load is running): in a worker thread, so that no request waits for it."""
        now = time.monotonic()
        if self._loading or now - self._looked < FOLLOW_SECONDS:
            return
        self._looked = now
        folder = pinned(self.model_dir)
        if folder == self._seen:
            return
        self._seen = folder
        if folder != self._served.folder:
            self._loading = True
            threading.Thread(target=self._swap, args=(folder,), name="autotune-serve-load", daemon=True).start()

    def _swap(self, folder: Path) -> None:
        """Load the version in `folder` and serve it from now on; one log line either way."""
        old = self._served
        try:
            self._served = self._load(folder)
            log.info(f"serving version {self._served.version} of {self.model_dir} (was {old.version})")
        except Exception as err:  # whatever a damaged or half-deleted version raises, the old one keeps serving
            why = (str(err).strip().splitlines() or [type(err).__name__])[0]
            log.warning(f"cannot serve version {folder.name} of {self.model_dir}, still serving version "
                        f"{old.version}: {why}")
        finally:
            self._loading = False

    def _load(self, folder: Path) -> Served:
        """The recipe app of the version in `folder`, with the limits checked against its serve()."""
        serve, card = recipe_function(folder, "serve",
                                      f"autotune serve cannot answer for the model in {self.model_dir}")
        unknown = unknown_arguments(serve, self._limits, hidden=("model_dir",))
        if unknown:
            raise UserError(f"recipe {card.get('recipe')!r} serves the model in {self.model_dir} with {unknown}")
        with recipe_calls(card, "serve", serve):
            app = serve(str(folder), **self._limits)
        unresolved = unresolved_parameters(app)
        if unresolved:
            raise UserError(f"recipe {card.get('recipe')!r}: the app of its serve() has parameters whose annotation "
                            f"names nothing FastAPI finds ({'; '.join(unresolved)}), so FastAPI would refuse every "
                            "request to them: import those names at the top of the recipe's file (under `from "
                            "__future__ import annotations` an annotation is text, read in the module's globals), "
                            "or build the app with autotune.serve.model_app")
        return Served(app, str(card.get("version")), folder)


def public_card(card: Mapping[str, Any]) -> dict[str, Any]:
    """What GET /model shows a client by default: the card's PUBLIC_CARD keys (a tabular card's columns by kind,
    numeric and categorical, with the categories each takes, `_public_categories`); no local path (run_dir,
    base_dir, config.data.path), search history (top_trials), library versions or a tabular model's scalers."""
    public = {key: card[key] for key in PUBLIC_CARD if key in card}
    if isinstance(public.get("columns"), Mapping):
        public["columns"] = {kind: public["columns"][kind] for kind in PUBLIC_COLUMNS if kind in public["columns"]}
    if isinstance(public.get("categories"), Mapping):
        public.update(_public_categories(card))
    return public


def _public_categories(card: Mapping[str, Any]) -> dict[str, Any]:
    """A tabular card's `categories` but those of its columns of nearly a value per training row (an id, a name,
    an e-mail address, a free text: `withheld_columns`), which would give every client the training rows'
    values and tell it nothing a new row can use; those columns' names as `withheld_categories`."""
    from autotune.tabular.data import withheld_columns  # pandas and torch: a tabular card's alone

    withheld = withheld_columns(card)
    shown = {"categories": {c: values for c, values in card["categories"].items() if c not in withheld}}
    return {**shown, "withheld_categories": withheld} if withheld else shown


def model_app(card: Mapping[str, Any], **health: Any) -> FastAPI:
    """A FastAPI app named after the model `card`, answering GET /health ({"status", "model", "version"} and
    `health`) and GET /model (its `public_card`; the whole card for a ModelServer with `full_card`); the recipe's
    app adds POST /predict. A request whose parameters FastAPI refuses (`?top_k=0`) gets a 422 with one text
    detail, as every other refusal (`invalid_parameters`). The routes the recipe adds read annotations written as
    text where the endpoint sees names (`ResolvedRoute`): `request: Request` with Request imported inside serve()."""
    app = FastAPI(title=f"autotune: {card.get('name', 'model')}", version=str(card.get("version")))
    app.router.route_class = ResolvedRoute  # `request: Request` with Request imported inside serve()
    app.add_exception_handler(RequestValidationError, invalid_parameters)  # type: ignore[arg-type]  (any Exception)

    @app.api_route("/health", methods=["GET", "HEAD"])  # HEAD: load balancers' health checks
    def health_check() -> dict[str, Any]:
        return {"status": "ok", "model": card.get("name"), "version": card.get("version"), **health}

    public = public_card(card)

    @app.get("/model")
    def model_card(request: Request) -> Mapping[str, Any]:
        return card if request.scope.get(FULL_CARD_KEY) else public

    return app


# what an endpoint's annotation written as text may name besides its module's and its enclosing function's names
FASTAPI_NAMES = {**{name: value for name, value in vars(fastapi).items() if not name.startswith("_")},
                 "Annotated": Annotated}


class ResolvedRoute(APIRoute):
    """A route of a `model_app` app, whose endpoint's annotations written as text (a recipe starting with `from
    __future__ import annotations`) are read where the endpoint's code sees names (`_resolved`), not only in its
    module's globals as FastAPI reads them."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _resolved(endpoint), **kwargs)


def _resolved(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint`, its annotations written as text evaluated in the names it closes over, its module's globals, then
    FastAPI's names (`Request`, `UploadFile`, `Query`, ...) and Annotated, and given as its `__signature__` (which
    FastAPI reads): `request: Request` with Request imported inside serve() is FastAPI's Request. An annotation
    naming none of those is left as text (`unresolved_parameters` finds it)."""
    function = inspect.unwrap(endpoint)
    texts = any(isinstance(value, str) for value in getattr(function, "__annotations__", {}).values())
    if not texts or not hasattr(function, "__globals__"):
        return endpoint
    try:
        enclosing = inspect.getclosurevars(function).nonlocals
        names = ChainMap(enclosing, function.__globals__, FASTAPI_NAMES)
        annotations = inspect.get_annotations(function, globals=function.__globals__, locals=names, eval_str=True)
    except (NameError, ValueError):  # a name found nowhere; a closure cell not filled yet
        return endpoint
    signature = inspect.signature(function)
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[parameter.replace(annotation=annotations.get(name, parameter.annotation))
                    for name, parameter in signature.parameters.items()],
        return_annotation=annotations.get("return", signature.return_annotation))
    return endpoint


def unresolved_parameters(app: Any) -> list[str]:
    """The parameters of `app`'s routes whose annotation FastAPI could not resolve, which it takes for required
    query parameters of that name: `POST /predict: request: 'Request'`."""
    found = []
    for route in getattr(app, "routes", ()):
        if isinstance(route, APIRoute):
            found += [f"{' '.join(sorted(route.methods))} {route.path}: {field.name}: "
                      f"{field.field_info.annotation.__forward_arg__!r}" for field in _fields(route.dependant)
                      if isinstance(field.field_info.annotation, ForwardRef)]
    return found


def _fields(dependant: Any) -> Iterator[Any]:
    """The parameters (FastAPI's fields) of a route's `dependant` and of its dependencies."""
    for kind in ("path_params", "query_params", "header_params", "cookie_params", "body_params"):
        yield from getattr(dependant, kind, ())
    for dependency in getattr(dependant, "dependencies", ()):
        yield from _fields(dependency)


KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a text"}  # what a parameter takes
BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))  # the constraints of Query(ge=..., ...)


async def invalid_parameters(request: Request, err: RequestValidationError) -> JSONResponse:
    """The 422 answer to parameters FastAPI refuses (of the wrong type, out of range): {"detail": one text}, as
    every other refusal's, instead of FastAPI's list of pydantic errors; each error names its parameter, what was
    wrong and what the parameter allows."""
    fields = _parameters(request.scope.get("route"))
    return JSONResponse({"detail": "; ".join(_wrong(error, fields) for error in err.errors())}, status_code=422)


def _parameters(route: Any) -> dict[str, Any]:
    """The parameters (FastAPI's fields) of the `route` that refused a request, by the name a request gives."""
    dependant = getattr(route, "dependant", None)
    fields = [field for kind in ("query_params", "path_params", "header_params")
              for field in getattr(dependant, kind, ())]
    return {field.alias: field for field in fields}


def _wrong(error: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
    """One validation error as text: `query parameter top_k: Input should be greater than or equal to 1 (got '0');
    allowed: a whole number >= 1 and <= 1000`."""
    where, *name = error.get("loc") or ("request",)
    key = ".".join(map(str, name))
    text = f"{where} parameter {key}: {error['msg']}" if key else f"{where}: {error['msg']}"
    if error.get("input") is not None:
        text += f" (got {reprlib.repr(error['input'])})"  # cut to about 30 characters
    return f"{text}; allowed: {_allowed(fields[key])}" if key in fields else text


def _allowed(field: Any) -> str:
    """What a parameter takes: its type and bounds, e.g. `a whole number >= 1 and <= 1000`."""
    info = field.field_info
    kinds = [kind for kind in get_args(info.annotation) or (info.annotation,) if kind is not type(None)]
    kind = KINDS.get(kinds[0], getattr(kinds[0], "__name__", str(kinds[0]))) if kinds else "a value"
    bounds = [f"{sign} {getattr(item, key)}" for item in info.metadata for key, sign in BOUNDS
              if getattr(item, key, None) is not None]
    return f"{kind} {' and '.join(bounds)}" if bounds else kind


DRAINED_BYTES = 256 * 2**20  # a refused body is read up to this much, then the connection is dropped


async def limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk, refused (413) once it is over `limit` bytes: by its Content-Length
    before reading it, or, without one, once it has been read past the limit. A refused body is still read to its
    end (up to DRAINED_BYTES, not kept), since a client that sends its whole body before reading the answer
    (urllib, requests) would otherwise get a connection reset instead of the 413. A compressed body (a
    Content-Encoding other than identity): 415. A body that sends nothing for the read timeout (the scope's
    READ_TIMEOUT_KEY, else READ_TIMEOUT seconds): 408, and the connection is closed. A client that goes away
    mid-body: one INFO line, and the request ends with an answer nobody reads."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    declared = request.headers.get("content-length", "")
    if encoding not in ("", "identity"):
        await _drain(_timed(request), declared)
        raise HTTPException(415, f"Content-Encoding {encoding} is not supported; send the body uncompressed")
    if declared.isdigit() and int(declared) > limit:
        await _drain(_timed(request), declared)
        raise over_limit(f"request body of {declared} bytes is", limit)
    seen = 0
    chunks = _timed(request)
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            await _drain(chunks, declared, seen)
            raise over_limit("request body", limit)
        yield chunk


def over_limit(what: str, limit: int) -> HTTPException:
    """The 413 answer to `what` ("request body", "big.png: file") over `limit` bytes, naming the option that
    raises the limit."""
    return HTTPException(413, f"{what} over the limit of {limit} bytes; `autotune serve {BYTES_OPTION} MB` raises "
                              f"it (create_app: max_bytes)")


async def _timed(request: Request) -> AsyncIterator[bytes]:
    """The chunks of the request body, each awaited at most the read timeout: past it a 408; a client gone, a 400
    that nobody reads (a ClientDisconnect would escape as a traceback)."""
    timeout = request.scope.get(READ_TIMEOUT_KEY, READ_TIMEOUT)
    stream = request.stream()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), timeout)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise HTTPException(408, f"the request body sent nothing for {timeout:g} s; send it whole",
                                headers={"Connection": "close"}) from None
        except ClientDisconnect:
            log.info(f"a client went away before sending the whole body of {request.method} {request.url.path}")
            raise HTTPException(400, "the client went away before sending the whole body") from None
        yield chunk


async def _drain(chunks: AsyncIterator[bytes], declared: str, seen: int = 0) -> None:
    """Read the rest of a refused body (`chunks`, from `_timed`), up to DRAINED_BYTES in all (none when its
    `declared` length is over it); a body that stalls or a client that goes away ends it."""
    if declared.isdigit() and int(declared) > DRAINED_BYTES:
        return
    try:
        async for chunk in chunks:
            seen += len(chunk)
            if seen > DRAINED_BYTES:
                return
    except HTTPException:  # 408 or gone: nothing more to read, the refusal stands
        return


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, within `limit` bytes (`limited`)."""
    return b"".join([chunk async for chunk in limited(request, limit)])


def refused(err: BadInput, name: str | None = None) -> HTTPException:
    """The 4xx answer to an input the model cannot be given: the BadInput's status and message (after `name`, the
    upload's, when given)."""
    return HTTPException(err.status, f"{name}: {err}" if name else str(err))
