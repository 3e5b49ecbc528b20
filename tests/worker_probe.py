"""A probe run in the report worker process: stdlib only, so importing it (which the worker
does to unpickle the call) loads none of the modules it looks for."""

from __future__ import annotations

import os
import sys


def loaded(modules: tuple[str, ...]) -> tuple[int, bool]:
    """The worker's pid, and whether all of ``modules`` are imported there."""
    return os.getpid(), all(m in sys.modules for m in modules)
