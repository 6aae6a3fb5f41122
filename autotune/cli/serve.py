"""`autotune serve MODEL_DIR`: an HTTP service for an exported model (FastAPI + uvicorn, the `serve` extra), the
app of the `serve(model_dir, **limits)` of the recipe that made the model."""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from autotune.cli.common import (
    MODEL_DIR_HELP, MODEL_FOLDER, HelpFormatter, check_folder, listening_socket, pixel_count, port_number,
)

EPILOG = """\
examples:
  autotune serve models/digits                              on http://127.0.0.1:8000
  autotune serve models/digits --host 0.0.0.0 --port 9000   reachable from other machines
  autotune serve models/digits --host 0.0.0.0 --keep-alive 65   behind a load balancer idle-timing out at 60 s
  curl -F file=@seven.png http://127.0.0.1:8000/predict     one image -> one JSON object
  curl -F files=@a.png -F files=@b.jpg 'http://127.0.0.1:8000/predict?top_k=5'   several -> a list
  curl http://127.0.0.1:8000/model                          what a client needs to call the model (--full-card:
                                                            the whole model card, local paths included)
  curl -si http://127.0.0.1:8000/health | grep -i version   the version answering (header X-Model-Version)
  autotune serve models/tabular --max-rows 1000             a tabular model: JSON rows
  curl -H 'content-type: application/json' -d '{"rows": [{"age": 61, "smoker": "yes"}]}' \\
      http://127.0.0.1:8000/predict                         -> {"predictions": [{"label": ..., "probability": ...}]}

Endpoints: POST /predict, GET /health, GET /model; interactive documentation at /docs. What /predict reads is the
model's recipe's: an image classifier takes a multipart upload (field `file` or `files`), kept in memory and
checked (content type, size, pixel count, decodable image); a tabular model takes a JSON body {"rows": [...]},
whose rows are checked (a missing column or a wrong type: 422 naming the row and the column; a category the model
did not see is encoded as "unknown", as in its test metrics, and named in the prediction's "unseen_categories");
a model of another recipe takes what that recipe's serve() reads.
A rejected request gets a 4xx answer {"detail": "..."} (408: a body that sent nothing for --read-timeout
seconds; 415: a compressed body). On SIGTERM or Ctrl-C, requests in flight get --graceful-timeout seconds to
finish; then the server ends (Ctrl-C: exit 130; SIGTERM: killed by it, 143 in a shell; start-up errors: 2).
Every answer names the version of the model that made it (header X-Model-Version; /health's "version").

A canonical model (models/<name>, the link an export moves to each version it promotes) is followed: after a
retrain promotes a new version, the server loads it in the background and answers with it from then on, saying so
on stderr in one line ("serving version NEW of models/digits (was OLD)"); a version that cannot be loaded is
skipped, also in one line, and the current one keeps answering. A plain folder is served as it was at the start.
Needs: pip install "autotune[serve]".
"""

# option -> (the limit the recipe's serve() takes, how the option's value becomes it)
LIMITS = {
    "max_upload_mb": ("max_bytes", lambda mb: int(mb * 2**20)),
    "max_files": ("max_files", int),
    "max_pixels": ("max_pixels", int),
    "max_rows": ("max_rows", int),
}
# option -> uvicorn.Config's argument (None: not given, uvicorn's default)
SERVER = {"keep_alive": "timeout_keep_alive", "graceful_timeout": "timeout_graceful_shutdown",
          "limit_concurrency": "limit_concurrency"}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve an exported model over HTTP (POST /predict)", epilog=EPILOG,
        description="Serve an exported model over HTTP: POST /predict (what the model's recipe's serve() reads: "
                    "the image recipe's, image uploads; the tabular recipe's, JSON rows; another recipe's, its own), "
                    "GET /health, GET /model.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help=MODEL_DIR_HELP)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=8000,
                        help="port to listen on (default 8000; 0: a free one)")
    parser.add_argument("--max-upload-mb", type=float, metavar="MB",
                        help="largest accepted upload or request body, passed to the recipe's serve() as max_bytes "
                             "(the image recipe: each image file, default 5; the tabular recipe: the JSON body, "
                             "default 10)")
    parser.add_argument("--max-files", type=int, metavar="N", help="image models: most images per request (default 16)")
    parser.add_argument("--max-pixels", type=pixel_count, metavar="N|WxH",
                        help="image models: largest accepted image in pixels, a number or WIDTHxHEIGHT "
                             "(default 4096x4096)")
    parser.add_argument("--max-rows", type=int, metavar="N",
                        help="tabular models: most rows per request (default 10000)")
    parser.add_argument("--read-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="a request body that sends nothing for this long gets 408 (default 30)")
    parser.add_argument("--keep-alive", type=float, default=5.0, metavar="SECONDS",
                        help="how long an idle connection is kept open (default 5); behind a load balancer, set it "
                             "above your load balancer's idle timeout (AWS ALB: 60)")
    parser.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="on SIGTERM or Ctrl-C, how long requests in flight may take to finish before their "
                             "connections are closed (default 30)")
    parser.add_argument("--limit-concurrency", type=int, metavar="N",
                        help="most connections and requests at once; beyond it, 503 (default: no limit)")
    parser.add_argument("--full-card", action="store_true",
                        help="GET /model answers the whole model card (local paths, search history, library "
                             "versions); default: only what a client needs to call the model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.errors import UserError
    from autotune.logs import lines_to

    try:
        import uvicorn

        from autotune.serve import create_app
    except ImportError as err:
        raise UserError(f"serving needs FastAPI, uvicorn and python-multipart ({err.name} is missing): "
                        'pip install "autotune[serve]"') from None
    limits, flags = {}, {}
    for option, (limit, convert) in LIMITS.items():
        if getattr(args, option) is not None:
            flags[limit] = _flag(option)
            limits[limit] = _positive(args, option, convert)
    server = {name: _positive(args, option) for option, name in SERVER.items() if getattr(args, option) is not None}
    read_timeout = _positive(args, "read_timeout")
    check_folder(args.model_dir, "MODEL_DIR", MODEL_FOLDER)
    _check_applies(args.model_dir, flags)
    app = create_app(args.model_dir, read_timeout=read_timeout, full_card=args.full_card, **limits)
    with listening_socket(args.host, args.port) as sock:  # a taken port or an unknown host: one line, as dashboard's
        port = sock.getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 address, as a URL writes it
        print(f"serving {args.model_dir} (version {app.version}) on http://{host}:{port}  "
              "(POST /predict, GET /health, GET /model)", flush=True)
        config = uvicorn.Config(app, host=args.host, port=port, log_level="debug" if args.verbose else "info",
                                **server)
        with lines_to(sys.stderr):  # the version it switches to, or why not, as a canonical model's link moves
            uvicorn.Server(config).run(sockets=[sock])
    return 0


def _flag(option: str) -> str:
    """The command-line flag of an argparse destination: max_upload_mb -> --max-upload-mb."""
    return f"--{option.replace('_', '-')}"


def _positive(args: argparse.Namespace, option: str, convert: Any = None) -> Any:
    """The value of `option`, converted (`convert`: to the unit used inside), once checked to be a finite number
    and, converted, > 0; else a one-line UserError naming the flag."""
    from autotune.errors import UserError

    value = getattr(args, option)
    if not math.isfinite(value):
        raise UserError(f"{_flag(option)} must be a finite number > 0, got {value}")
    converted = value if convert is None else convert(value)
    if converted <= 0:
        after = "" if converted == value else f" ({converted} once converted to the unit used inside)"
        raise UserError(f"{_flag(option)} must be > 0, got {value}{after}")
    return converted


def _check_applies(model_dir: str, flags: dict[str, str]) -> None:
    """Each limit given (the serve() argument -> its flag) is one the model's recipe serves with; else one line
    naming the flag, as `autotune predict --top-k` does."""
    from autotune.calls import unknown_arguments
    from autotune.errors import UserError
    from autotune.model_dir import recipe_function

    serve, card = recipe_function(model_dir, "serve", f"autotune serve cannot answer for the model in {model_dir}")
    for limit, flag in flags.items():
        if unknown_arguments(serve, {limit: 1}, hidden=("model_dir",)):
            raise UserError(f"{flag} does not apply to the model in {model_dir}: the serve() of recipe "
                            f"{card.get('recipe')!r} takes no {limit}; drop {flag}")
