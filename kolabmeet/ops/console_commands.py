"""The console's commands: what an operator may ask of or do to a running server.

Each command takes string arguments and returns something JSON can carry; a
wrong use raises `CommandError` with a message for the operator.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from kolabmeet.media.errors import MediaError
from kolabmeet.ops import snapshot

if TYPE_CHECKING:
    from kolabmeet.app import Server

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WORKER_LOGGER = "kolabmeet.worker"


class CommandError(Exception):
    """A command was used wrongly or its target is gone; the message says how."""


Command = Callable[..., Awaitable[Any]]


class Commands:
    """Every console command, by name; `run` dispatches a request to one."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self.rooms = server.rooms
        self.table: dict[str, tuple[Command, str]] = {
            "help": (self.help, "help: this list"),
            "stats": (self.stats, "stats [ID]: the GET /stats dump, or the getStats of one object"),
            "rooms": (self.list_rooms, "rooms: rooms with their peer counts"),
            "peers": (self.peers, "peers [ROOM]: peers of every room or of one"),
            "transports": (self.transports, "transports [PEER]: transports with ICE and DTLS states"),
            "producers": (self.producers, "producers [PEER]"),
            "consumers": (self.consumers, "consumers [PEER]"),
            "dump": (self.dump, "dump ID: the worker's dump of a transport, producer, consumer or router"),
            "ids": (self.ids, "ids: every room, peer and media object id (for completion)"),
            "log": (self.log, "log [LOGGER LEVEL]: logger levels, or set one (kolabmeet.worker... in workers too)"),
            "kick": (self.kick, "kick PEER: close a peer (it is told, as by a moderator)"),
            "close": (self.close_room, "close ROOM: close a room and every peer in it"),
        }

    async def run(self, name: str, args: list[str]) -> Any:
        entry = self.table.get(name)
        if entry is None:
            raise CommandError(f"unknown command {name!r}; 'help' lists them")
        try:
            inspect.signature(entry[0]).bind(*args)
        except TypeError:
            raise CommandError(f"usage: {entry[1]}") from None
        try:
            return await entry[0](*args)
        except snapshot.NotFound as exc:
            raise CommandError(str(exc)) from None
        except MediaError as exc:
            raise CommandError(f"the media worker said: {exc}") from None

    async def help(self) -> list[str]:
        return [usage for _command, usage in self.table.values()]

    async def stats(self, object_id: str | None = None) -> Any:
        if object_id is None:
            return await snapshot.stats(self.rooms)
        kind, obj = snapshot.find_object(self.rooms, object_id)
        if kind == "router":
            raise CommandError("routers have no stats; try dump")
        return await obj.get_stats()

    async def list_rooms(self) -> list[dict[str, Any]]:
        return snapshot.rooms_table(self.rooms)

    async def peers(self, room_id: str | None = None) -> list[dict[str, Any]]:
        if room_id is not None:
            snapshot.find_room(self.rooms, room_id)
        return snapshot.peers_table(self.rooms, room_id)

    async def transports(self, peer_id: str | None = None) -> list[dict[str, Any]]:
        return self._media("transport", peer_id)

    async def producers(self, peer_id: str | None = None) -> list[dict[str, Any]]:
        return self._media("producer", peer_id)

    async def consumers(self, peer_id: str | None = None) -> list[dict[str, Any]]:
        return self._media("consumer", peer_id)

    def _media(self, kind: str, peer_id: str | None) -> list[dict[str, Any]]:
        if peer_id is not None:
            snapshot.find_peer(self.rooms, peer_id)
        return snapshot.media_table(self.rooms, kind, peer_id)

    async def dump(self, object_id: str) -> Any:
        _kind, obj = snapshot.find_object(self.rooms, object_id)
        return await obj.dump()

    async def ids(self) -> list[str]:
        found: list[str] = []
        for room in list(self.rooms.rooms.values()):
            found.append(room.id)
            for peer in list(room.peers.values()):
                found += [peer.id, *peer.transports, *peer.producers, *peer.consumers]
        return found

    async def log(self, name: str | None = None, level: str | None = None) -> dict[str, str]:
        if name is None:
            return _levels()
        if level is None or level.upper() not in LOG_LEVELS:
            raise CommandError(f"usage: log LOGGER LEVEL, LEVEL one of {', '.join(LOG_LEVELS)}")
        level = level.upper()
        if name == WORKER_LOGGER or name.startswith(WORKER_LOGGER + "."):
            for worker in self.server.pool.workers:
                if not worker.closed:
                    await worker.request("worker.setLogLevel", "", {"logger": name, "level": level})
        logging.getLogger(name).setLevel(level)
        return _levels()

    async def kick(self, peer_id: str) -> str:
        peer = snapshot.find_peer(self.rooms, peer_id)
        room = snapshot.find_room(self.rooms, peer.room_id)
        self.server.signaling.notifier.notify(peer, "moderator:kickPeer", {})
        await asyncio.sleep(0)  # the notification's send task goes before the socket is closed
        await room.close_peer(peer)
        return f"peer {peer_id} closed"

    async def close_room(self, room_id: str) -> str:
        room = snapshot.find_room(self.rooms, room_id)
        self.server.signaling.notifier.broadcast(room.peers.values(), "moderator:closeRoom", None)
        await asyncio.sleep(0)
        await room.close()
        return f"room {room_id} closed"


def _levels() -> dict[str, str]:
    """The level of the root logger and of every kolabmeet logger set on its own."""
    levels = {"root": logging.getLevelName(logging.getLogger().level)}
    for name, logger in sorted(logging.Logger.manager.loggerDict.items()):
        if name.startswith("kolabmeet") and isinstance(logger, logging.Logger) and logger.level:
            levels[name] = logging.getLevelName(logger.level)
    return levels
