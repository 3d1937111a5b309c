"""`kolabmeet console`: the operator's end of the console socket.

Interactive by default, with line editing, history (~/.kolabmeet_console_history)
and completion of commands and ids; `--stats` prints one dump and exits
(`--json` for machines); `kolabmeet console COMMAND ARGS...` runs one command.
`watch ID` prints a stream's bitrate, loss, score and layers every second.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from typing import Any, Callable, TextIO

HISTORY = os.path.expanduser("~/.kolabmeet_console_history")
CLIENT_COMMANDS = ("watch", "quit")


class ConsoleClient:
    """A connection to a server's console socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise ConnectionError(f"cannot open the console at {path}: {exc.strerror or exc} (is the server "
                                  "running, as this user, with this KOLABMEET_CONSOLE_SOCKET?)") from None
        self._file = self._sock.makefile("rwb")

    def request(self, command: str, *args: str) -> Any:
        """The command's result; RuntimeError with the server's message when it failed."""
        self._file.write(json.dumps({"command": command, "args": list(args)}).encode() + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise ConnectionError("the server closed the console connection")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(answer.get("error", "failed"))
        return answer["result"]

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def render(result: Any) -> str:
    """A table for a list of flat rows, indented JSON for anything else."""
    if isinstance(result, list) and result and all(isinstance(row, dict) for row in result):
        columns = list(dict.fromkeys(key for row in result for key in row))
        cells = [[_cell(row.get(column)) for column in columns] for row in result]
        widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in cells]
        return "\n".join(line.rstrip() for line in lines)
    if isinstance(result, list) and all(isinstance(item, str) for item in result):
        return "\n".join(result) if result else "(none)"
    if isinstance(result, str):
        return result
    return json.dumps(result, indent=2, sort_keys=True)


def render_stats(stats: dict[str, Any]) -> str:
    """The GET /stats dump as lines an operator reads: room, peer, then each transport, producer, consumer."""
    lines = []
    for room_id, peers in stats.items():
        lines.append(f"room {room_id}: {len(peers)} peer(s)")
        for peer in peers.values():
            lines.append(f"  peer {peer['id']} ({peer.get('nickname') or 'no name'})")
            for kind in ("transports", "producers", "consumers"):
                for entries in peer.get(kind, []):
                    if entries:
                        lines.append(f"    {kind[:-1]} " + watch_line(None, entries[0], 0))
    return "\n".join(lines) if lines else "no rooms"


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def watch_line(previous: dict[str, Any] | None, current: dict[str, Any], seconds: float) -> str:
    """One line about a stream: bitrate since the last sample, loss, score, layers (as far as they apply)."""
    parts = [current.get("type", "?")]
    if previous is not None and seconds > 0:
        rate = (current.get("byteCount", current.get("bytesSent", 0)) -
                previous.get("byteCount", previous.get("bytesSent", 0))) * 8 / seconds
        parts.append(f"{rate / 1000:.0f} kbit/s")
    for key, label in (("packetsLost", "lost"), ("fractionLost", "fraction lost"), ("score", "score"),
                       ("spatialLayer", "spatial"), ("temporalLayer", "temporal"), ("nackCount", "nacks"),
                       ("pliCount", "plis"), ("availableOutgoingBitrate", "estimate"), ("iceSelectedTuple", "tuple")):
        if current.get(key) is not None:
            value = current[key]
            if isinstance(value, dict):
                value = f"{value.get('remoteIp')}:{value.get('remotePort')} {value.get('protocol')}"
            parts.append(f"{label} {value}")
    return ", ".join(str(p) for p in parts)


def watch(client: ConsoleClient, object_id: str, out: TextIO, count: int | None = None,
          interval: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
    """Print `watch_line` of the object's first stats entry every `interval` until interrupted (or `count`)."""
    previous: dict[str, Any] | None = None
    at = time.monotonic()
    printed = 0
    while count is None or printed < count:
        current = client.request("stats", object_id)[0]
        now = time.monotonic()
        print(watch_line(previous, current, now - at), file=out, flush=True)
        previous, at, printed = current, now, printed + 1
        sleep(interval)


def run_line(client: ConsoleClient, line: str, out: TextIO) -> bool:
    """Run one typed line; False when the operator asked to quit."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        print(f"error: {exc}", file=out)
        return True
    if not words:
        return True
    if words[0] in ("quit", "exit"):
        return False
    try:
        if words[0] == "watch":
            if len(words) != 2:
                print("usage: watch ID (Ctrl-C stops)", file=out)
                return True
            watch(client, words[1], out)
        else:
            result = client.request(words[0], *words[1:])
            print(render_stats(result) if words == ["stats"] else render(result), file=out)
    except RuntimeError as exc:
        print(f"error: {exc}", file=out)
    except KeyboardInterrupt:
        print(file=out)
    return True


def interactive(client: ConsoleClient) -> None:
    """A prompt with history and completion, until EOF or quit."""
    import readline

    commands = [*(line.split(" ", 1)[0].rstrip(":") for line in client.request("help")), *CLIENT_COMMANDS]
    ids: list[str] = []

    def complete(text: str, state: int) -> str | None:
        first = readline.get_line_buffer().lstrip().count(" ") == 0
        if state == 0 and not first:
            ids[:] = client.request("ids")
        options = [c for c in (commands if first else ids) if c.startswith(text)]
        return options[state] if state < len(options) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    try:
        readline.read_history_file(HISTORY)
    except OSError:
        pass
    print(f"kolabmeet console on {client.path}; 'help' lists the commands, 'watch ID' follows a stream")
    try:
        while True:
            try:
                line = input("kolabmeet> ")
            except EOFError:
                print()
                return
            except KeyboardInterrupt:
                print()
                continue
            if not run_line(client, line, sys.stdout):
                return
    finally:
        try:
            readline.write_history_file(HISTORY)
        except OSError:
            pass


def main(path: str, stats: bool, as_json: bool, command: list[str]) -> int:
    try:
        client = ConsoleClient(path)
    except ConnectionError as exc:
        print(f"kolabmeet console: {exc}", file=sys.stderr)
        return 1
    try:
        if stats or command:
            name, args = ("stats", []) if stats else (command[0], command[1:])
            if name == "watch":
                watch(client, args[0] if args else "", sys.stdout)
                return 0
            try:
                result = client.request(name, *args)
            except RuntimeError as exc:
                print(f"kolabmeet console: {exc}", file=sys.stderr)
                return 1
            if as_json:
                print(json.dumps(result, indent=2, sort_keys=True))
            else:
                print(render_stats(result) if name == "stats" and not args else render(result))
            return 0
        interactive(client)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
