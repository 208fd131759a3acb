"""Logging setup shared by the CLI and every worker: one line per event, never a secret."""

from __future__ import annotations

import logging


def configure(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s [%(process)d] %(name)s: "
                        "%(message)s", force=True)
