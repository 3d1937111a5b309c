"""Entry point of a media worker process: `python -m kolabmeet.media.worker <fd>`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys

import uvloop

from kolabmeet.media.worker.server import serve_socket


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m kolabmeet.media.worker <channel fd>", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("KOLABMEET_WORKER_LOG_LEVEL", "WARNING").upper(),
                        format=f"%(asctime)s worker[{os.getpid()}] %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[1]))
    uvloop.run(serve_socket(sock))
    return 0
