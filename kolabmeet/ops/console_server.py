"""The console's end in the server: a Unix socket only the server's user can open.

One JSON object per line each way: `{"command": "peers", "args": ["ROOM"]}` in,
`{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}` out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from typing import TYPE_CHECKING, Any

from kolabmeet.ops.console_commands import CommandError, Commands

if TYPE_CHECKING:
    from kolabmeet.app import Server

log = logging.getLogger("kolabmeet.console")

MAX_LINE = 64 * 1024
CHANGES = frozenset({"kick", "close", "log"})
"""Commands that change something: logged at INFO (the others at DEBUG)."""


class ConsoleSocketError(OSError):
    """The console socket cannot be made where configured; the message says why."""


class ConsoleServer:
    """Serves `Commands` on the Unix socket at `path` (mode 0600, its folder made 0700 if missing)."""

    def __init__(self, server: "Server", path: str) -> None:
        self.path = path
        self.commands = Commands(server)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.stat(folder)
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise ConsoleSocketError(0, f"KOLABMEET_CONSOLE_SOCKET {self.path}: its folder must be this user's and "
                                        "writable by no one else (another user could take the socket's place)")
        if os.path.exists(self.path):
            self._remove_stale()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_LINE)
        except OSError as exc:
            raise ConsoleSocketError(exc.errno, f"KOLABMEET_CONSOLE_SOCKET {self.path}: {exc.strerror}") from exc
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        log.info("console on %s", self.path)

    def _remove_stale(self) -> None:
        """A socket left by a server that is gone is removed; a live one is an error."""
        if not stat.S_ISSOCK(os.stat(self.path).st_mode):
            raise ConsoleSocketError(0, f"KOLABMEET_CONSOLE_SOCKET {self.path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)
            return
        finally:
            probe.close()
        raise ConsoleSocketError(0, f"KOLABMEET_CONSOLE_SOCKET {self.path}: another server is using it")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    await _answer(writer, {"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                    return
                if not line:
                    return
                await _answer(writer, await self._handle(line))
        except ConnectionError:
            return
        finally:
            writer.close()

    async def _handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "a request is one JSON object per line"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'a request looks like {"command": "peers", "args": []}'}
        args = request.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return {"ok": False, "error": "args must be a list of strings"}
        try:
            result = await self.commands.run(request["command"], args)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        level = logging.INFO if request["command"] in CHANGES else logging.DEBUG
        log.log(level, "console: %s %s", request["command"], " ".join(args))
        return {"ok": True, "result": result}

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


async def _answer(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message, default=str).encode() + b"\n")
    await writer.drain()
