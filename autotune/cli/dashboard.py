"""`autotune dashboard RUN_DIR`: a run's Optuna study in optuna-dashboard (the `dashboard` extra), served in-process."""
from __future__ import annotations

import argparse
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from autotune.cli.common import RUN_FOLDER, HelpFormatter, address_error, check_folder, local_run_folder, port_number
from autotune.errors import UserError

EPILOG = """\
examples:
  autotune dashboard runs/digits                   on http://127.0.0.1:8080/dashboard/
  autotune dashboard runs/                         the newest run in the storage folder; the others are listed
  autotune dashboard runs/digits --port 0          on a free port (the address is printed)
  autotune dashboard runs/digits --host 0.0.0.0    reachable from other machines

Shows the study of a finished or still running search (RUN_DIR/study.db): the optimisation history, every trial's
parameters, values and intermediate values, parallel coordinates, parameter importance, the Pareto front; its
Live Update switch follows a running search. The dashboard can also edit the study (notes, renaming or deleting
it): those edits go into RUN_DIR/study.db. Needs: pip install "autotune[dashboard]".
"""


class _Server(ThreadingMixIn, WSGIServer):
    """optuna-dashboard's page asks for several things at once: one thread per request."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No line per request: the page polls the study every few seconds (-v shows them)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="browse a search's Optuna study in optuna-dashboard", epilog=EPILOG,
        description="Serve the Optuna study of a finished or running search with optuna-dashboard.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="the run's folder, e.g. runs/digits, or a storage folder of runs (the newest is used); "
                        "a run's URI (--storage s3://...) reads its local mirror")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=8080,
                        help="port to listen on (default 8080; 0: a free one)")
    parser.set_defaults(func=run)


def find_run(folder: str) -> Path:
    """The run in `folder` (the folder itself, or the newest run of a storage folder), saying which it chose."""
    from autotune.engine.study import study_runs

    check_folder(folder, "RUN_DIR", RUN_FOLDER)
    runs = study_runs(folder)
    if not runs:
        raise UserError(f"{folder} holds no study.db, nor does any folder in it: not the folder of an autotune run "
                        "(runs/<name>/, written by `autotune run`) or a storage folder of runs")
    if len(runs) > 1:
        print(f"run: {runs[0]} (the newest of {len(runs)} runs in {folder}; "
              f"the others: {', '.join(p.name for p in runs[1:])})")
    return runs[0]


def listen(app: Any, host: str, port: int, verbose: int) -> _Server:
    """A server for the WSGI `app` bound to host:port; a taken or impossible address is a UserError."""
    handler = WSGIRequestHandler if verbose else _QuietHandler
    try:
        return make_server(host, port, app, server_class=_Server, handler_class=handler)
    except OSError as err:
        raise address_error(err, host, port) from None


def run(args: argparse.Namespace) -> int:
    from autotune.engine.study import open_storage

    try:
        import optuna_dashboard
    except ImportError as err:
        raise UserError(f"the dashboard needs optuna-dashboard ({err.name} is missing): "
                        'pip install "autotune[dashboard]"') from None
    run_dir = find_run(local_run_folder(args.run_dir))
    db = (run_dir / "study.db").resolve()
    try:
        storage, name, trials = open_storage(db, run_dir.resolve().name)
    except LookupError as err:
        raise UserError(f"cannot read the Optuna study in {db}: {err}") from None
    server = listen(optuna_dashboard.wsgi(storage), args.host, args.port, args.verbose)
    port = server.server_address[1]
    print(f"optuna-dashboard: http://{args.host}:{port}/dashboard/ (study {name}, {trials} trials); ctrl-C to stop",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
