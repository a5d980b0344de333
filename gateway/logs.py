"""Logging for every tdbot process (web, worker, cron): one format, set up once."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: int = logging.INFO) -> None:
    """Log to stderr in tdbot's format; leaves alone a process that has configured logging already."""
    logging.basicConfig(level=level, format=FORMAT)
