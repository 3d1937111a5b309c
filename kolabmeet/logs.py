"""Logging: one line per event, levels per module, and the original server's DEBUG namespaces.

`KOLABMEET_LOG_LEVELS="kolabmeet.media=DEBUG,kolabmeet.signaling=WARNING"` sets
levels per module (the workers' `kolabmeet.worker...` loggers too: the workers read
the variable). The original server's `DEBUG` variable of the `debug` package
(`DEBUG=kolabmeet-server*`, `kolabmeet-server:Room`, `mediasoup*`) is read as well:
its namespaces turn the matching modules to DEBUG. Workers prefix their lines
with `worker N (pid P)`. Nothing is logged per packet.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from typing import Mapping

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
NAMESPACES = {
    # The original's debug namespaces, and the loggers that do that work here.
    "kolabmeet-server": ("kolabmeet",),
    "kolabmeet-server:room": ("kolabmeet.signaling",),
    "kolabmeet-server:peer": ("kolabmeet.signaling",),
    "kolabmeet-server:lobby": ("kolabmeet.signaling",),
    "kolabmeet-server:server": ("kolabmeet", "kolabmeet.api"),
    "kolabmeet-server:webhook": ("kolabmeet.webhooks",),
    "mediasoup": ("kolabmeet.media", "kolabmeet.worker"),
    "mediasoup:worker": ("kolabmeet.media", "kolabmeet.worker"),
}


class LogConfigError(ValueError):
    """KOLABMEET_LOG_LEVELS cannot be read; the message says which part."""


def module_levels(env: Mapping[str, str]) -> dict[str, str]:
    """Logger name -> level from KOLABMEET_LOG_LEVELS, then DEBUG's namespaces (those win)."""
    levels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in env.get("KOLABMEET_LOG_LEVELS", "").split(","))):
        name, sep, level = part.partition("=")
        if not sep or not name.strip() or level.strip().upper() not in LEVELS:
            raise LogConfigError(f"KOLABMEET_LOG_LEVELS: {part!r} is not LOGGER=LEVEL, "
                                 f"LEVEL one of {', '.join(LEVELS)}")
        levels[name.strip()] = level.strip().upper()
    for pattern in filter(None, env.get("DEBUG", "").replace(",", " ").split()):
        if pattern.startswith("-"):
            continue
        for namespace, loggers in NAMESPACES.items():
            if fnmatch.fnmatch(namespace, pattern.lower()):
                levels.update(dict.fromkeys(loggers, "DEBUG"))
    return levels


def configure(level: str, env: Mapping[str, str] | None = None, prefix: str = "") -> None:
    """The root handler and level, then the per-module levels."""
    levels = module_levels(os.environ if env is None else env)
    logging.basicConfig(level=level, format=(prefix + " " if prefix else "") + FORMAT)
    for name, module_level in levels.items():
        logging.getLogger(name).setLevel(module_level)
