"""The `kolabmeet` command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import ssl
import sys
import urllib.request

import uvloop

from kolabmeet import logs
from kolabmeet.app import Server
from kolabmeet.config import Config, ConfigError, console_socket, default_console_socket, load_config
from kolabmeet.media.errors import MediaError
from kolabmeet.ops import console_client, doctor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kolabmeet", description="Kolab Meet media server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--dev", action="store_true",
                       help="local try: 127.0.0.1, no TLS, no TURN, a generated AUTH_TOKEN")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    health = commands.add_parser("health", help="exit 0 when the server configured by this environment answers "
                                 "GET /meetmedia/api/health (a container health check)")
    health.add_argument("--config-only", action="store_true", help="only check the configuration")
    commands.add_parser("doctor", help="check this deployment end to end (configuration, TLS, addresses, ports, "
                        "TURN, a WebRTC call through the running server)")
    console = commands.add_parser("console", help="the console of a running server (its Unix socket)")
    console.add_argument("--socket", help="the console socket (default: KOLABMEET_CONSOLE_SOCKET, else "
                         f"{default_console_socket()})")
    console.add_argument("--stats", action="store_true", help="print the stats dump (as GET /stats) and exit")
    console.add_argument("--json", action="store_true", help="print results as JSON")
    console.add_argument("words", nargs="*", metavar="COMMAND", help="run this one command and exit")
    return parser


YOUNG_COLLECTION_THRESHOLD = 7000
"""Allocations between collections of the youngest generation (Python's default: 700). A join
allocates thousands of short-lived objects (its capabilities, answers, notifications): over ten
bursts of 50 joins the collector took 125 ms of the control process's 1.25 s of CPU at the
default, one gen-2 collection of them 40-90 ms at once; 46 ms and no gen-2 collection with this
and the freeze (gc.callbacks, 2026-12-02)."""


def collect_less() -> None:
    """The collector of a long-running control process: what startup made (modules, the server
    itself) is frozen out of it, and it runs a tenth as often."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


async def _serve(config: Config) -> None:
    server = Server(config)
    await server.start()
    collect_less()
    if config.dev:
        print(f"kolabmeet (dev mode) on http://{config.listening_host}:{server.port}/meetmedia/api\n"
              f"AUTH_TOKEN={config.auth_token}\n"
              f"demo meeting: http://{config.listening_host}:{server.port}/meetmedia/demo/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logging.getLogger("kolabmeet").info("stopping")
    await server.stop()


def _health(config_only: bool) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"kolabmeet: configuration error: {exc}", file=sys.stderr)
        return exc.exit_code
    if config_only:
        return 0
    url = config.local_url + "/meetmedia/api/health"
    context = ssl._create_unverified_context() if config.tls else None  # our own listener, by address
    request = urllib.request.Request(url, headers={"X-Auth-Token": config.auth_token})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            healthy = json.load(response).get("success") is True
    except (OSError, ValueError) as exc:
        print(f"kolabmeet health: {url}: {exc}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"kolabmeet health: {url} did not say it is healthy", file=sys.stderr)
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "console":
        path = args.socket or console_socket(os.environ)
        if path is None:
            print("kolabmeet console: KOLABMEET_CONSOLE_SOCKET is none: the console is off", file=sys.stderr)
            return 1
        return console_client.main(path, args.stats, args.json, args.words)
    if args.command == "health":
        return _health(args.config_only)
    if args.command == "doctor":
        return doctor.main()
    try:
        logs.configure(args.log_level)
    except logs.LogConfigError as exc:
        print(f"kolabmeet: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        config = load_config(dev=args.dev)
    except ConfigError as exc:
        print(f"kolabmeet: configuration error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        uvloop.run(_serve(config))
    except (OSError, MediaError) as exc:
        print(f"kolabmeet: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
