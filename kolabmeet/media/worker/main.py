"""Entry point of a media worker process: `python -m kolabmeet.media.worker <fd>`."""

from __future__ import annotations

import os
import resource
import signal
import socket
import sys

import uvloop

from kolabmeet import logs
from kolabmeet.media.worker.server import serve_socket


def open_files_to_the_hard_limit() -> int:
    """Raise this process's limit of open files to what the system allows it: each plain
    transport takes two sockets and each WebRTC peer's selected tuple one, and service managers
    often start processes at 1024. The limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    return soft


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m kolabmeet.media.worker <channel fd>", file=sys.stderr)
        return 2
    level = os.environ.get("KOLABMEET_WORKER_LOG_LEVEL", "WARNING").upper()
    index = os.environ.get("KOLABMEET_WORKER_INDEX", "?")
    prefix = f"worker {index} (pid {os.getpid()})"
    try:
        logs.configure(level if level in logs.LEVELS else "WARNING", prefix=prefix)
    except logs.LogConfigError:
        logs.configure("WARNING", env={}, prefix=prefix)  # the control process has said what is wrong
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    open_files_to_the_hard_limit()
    sock = socket.socket(fileno=int(argv[1]))
    uvloop.run(serve_socket(sock))
    return 0
