"""All rooms of this server, by id."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kolabmeet.signaling.room import Room

if TYPE_CHECKING:
    from kolabmeet.api.webhooks import Webhooks
    from kolabmeet.config import Config
    from kolabmeet.media.pool import WorkerPool
    from kolabmeet.media.worker_proxy import Worker
    from kolabmeet.signaling.notifier import Notifier

log = logging.getLogger("kolabmeet.signaling")


class Rooms:
    """Creates rooms, finds them, forgets them when they close (firing `roomClosed`)."""

    def __init__(self, config: "Config", pool: "WorkerPool", notifier: "Notifier", webhooks: "Webhooks") -> None:
        self.config = config
        self.pool = pool
        self.notifier = notifier
        self.webhooks = webhooks
        self.rooms: dict[str, Room] = {}

    def create(self) -> Room:
        room = Room(self.config, self.pool, self.notifier, self._forget)
        self.rooms[room.id] = room
        log.info("room %s created", room.id)
        return room

    def get(self, room_id: str) -> Room | None:
        return self.rooms.get(room_id)

    def _forget(self, room: Room) -> None:
        if self.rooms.pop(room.id, None) is not None:
            self.webhooks.send({"roomId": room.id, "event": "roomClosed"})

    def worker_died(self, worker: "Worker") -> None:
        """Rooms on a dead worker lose their media; their routers tell them (see Room)."""
        count = sum(1 for room in self.rooms.values() if any(r.worker is worker for r in room.routers))
        log.warning("media worker %d died with %d room(s) on it", worker.index, count)

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            await room.close()
