"""`autotune serve MODEL_DIR`: an HTTP service for an exported model (FastAPI + uvicorn, the `serve` extra)."""
from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
examples:
  autotune serve models/digits                              on http://127.0.0.1:8000
  autotune serve models/digits --host 0.0.0.0 --port 9000   reachable from other machines
  curl -F file=@seven.png http://127.0.0.1:8000/predict     one image -> one JSON object
  curl -F files=@a.png -F files=@b.jpg 'http://127.0.0.1:8000/predict?top_k=5'   several -> a list
  curl http://127.0.0.1:8000/model                          the model card

Endpoints: POST /predict (multipart upload, field `file` or `files`), GET /health, GET /model; interactive
documentation at /docs. Uploads stay in memory and are checked (content type, size, pixel count, decodable
image); a rejected request gets a 4xx answer {"detail": "..."}. Needs: pip install "autotune[serve]".
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve an exported model over HTTP (POST /predict)", epilog=EPILOG,
        description="Serve an exported model over HTTP: POST /predict with image uploads, GET /health, GET /model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="an exported model directory (model.pt, model.json)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--max-upload-mb", type=float, default=5.0, metavar="MB",
                        help="largest accepted image file (default 5)")
    parser.add_argument("--max-files", type=int, default=16, metavar="N", help="most images per request (default 16)")
    parser.add_argument("--max-pixels", type=int, default=4096 * 4096, metavar="N",
                        help="largest accepted image, width x height (default 4096x4096)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.errors import UserError

    try:
        import uvicorn

        from autotune.serve import create_app
    except ImportError as err:
        raise UserError(f"serving needs FastAPI, uvicorn and python-multipart ({err.name} is missing): "
                        'pip install "autotune[serve]"') from None
    for name in ("max_upload_mb", "max_files", "max_pixels"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    app = create_app(args.model_dir, max_bytes=int(args.max_upload_mb * 2**20), max_files=args.max_files,
                     max_pixels=args.max_pixels)
    print(f"serving {args.model_dir} on http://{args.host}:{args.port}  (POST /predict, GET /health, GET /model)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="debug" if args.verbose else "info")
    return 0
