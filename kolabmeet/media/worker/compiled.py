"""The compiled twins of the hot path's objects: which are in use.

Some media objects have a C build beside their pure-Python one (``_send.c`` beside
``send.py``, ``_retransmission.c`` beside ``retransmission.py``, ...), the same behaviour,
compiled by ``pip install .`` where a C compiler is found. A module takes its C twin when it
was built, unless ``KOLABMEET_NO_EXTENSIONS=1``; the tests run both twins on the same input.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

DISABLED = os.environ.get("KOLABMEET_NO_EXTENSIONS") == "1"
"""The pure-Python twins everywhere (for comparing, or to rule the C ones out)."""

TWINS = ("_send", "_retransmission", "_send_history", "_vp8", "_consumer_core", "_rtp")
"""Every compiled twin, by module name (setup.py builds these)."""


def load(name: str) -> ModuleType | None:
    """The compiled twin ``kolabmeet.media.worker.<name>``, or None (not built, or disabled)."""
    if DISABLED:
        return None
    try:
        return importlib.import_module(f"kolabmeet.media.worker.{name}")
    except ImportError:
        return None


def available() -> list[str]:
    """The compiled twins a media worker here uses."""
    return [name for name in TWINS if load(name) is not None]
