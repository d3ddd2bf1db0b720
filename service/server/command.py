"""`nextword serve`: one server process, or a supervisor of `--workers N` (service/server/workers.py)."""
from __future__ import annotations

import asyncio

from service.server import settings, workers
from service.server.server import configure_logging, serve


def add_arguments(p) -> None:
    settings.add_arguments(p)


def main(args) -> int:
    s = settings.from_args(args)
    if s.workers != "1":
        configure_logging(s)
        return workers.run(s)
    return asyncio.run(serve(s))
