"""A meeting room: its peers, its router, its lifetime."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from kolabmeet import ids
from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.media.errors import MediaError
from kolabmeet.signaling.peer import Peer

if TYPE_CHECKING:
    from kolabmeet.config import Config
    from kolabmeet.media.pool import WorkerPool
    from kolabmeet.media.producer import Producer
    from kolabmeet.media.router import Router
    from kolabmeet.media.worker_proxy import Worker
    from kolabmeet.signaling.notifier import Notifier

log = logging.getLogger("kolabmeet.signaling")

UNUSED_ROOM_TIMEOUT = 6 * 3600.0
PIPE_LISTEN_IP = "127.0.0.1"


class Room:
    """Peers of one meeting and the routers their media goes through.

    A room starts on one router; past ROUTER_SCALE_SIZE peers per router it
    spreads to other workers, its producers piped between its routers.

    The room closes `room_empty_timeout` after its last peer leaves (or
    UNUSED_ROOM_TIMEOUT after creation if nobody ever connects); `on_close`
    then removes it from the registry and fires the webhook.
    """

    def __init__(self, config: "Config", pool: "WorkerPool", notifier: "Notifier",
                 on_close: Callable[["Room"], None]) -> None:
        self.id = ids.uuid4()
        self.created_at = int(time.time())
        self.config = config
        self.pool = pool
        self.notifier = notifier
        self.peers: dict[str, Peer] = {}
        self.routers: list["Router"] = []
        self.active_speaker: str | None = None
        self.closed = False
        self._on_close = on_close
        self._router_lock = asyncio.Lock()
        self._empty_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._arm_empty_timer(UNUSED_ROOM_TIMEOUT)

    def add_peer(self, role: int) -> Peer:
        """A new connection token for this room."""
        peer = Peer(ids.uuid4(), self.id, ids.token_hex(16), role)
        self.peers[peer.id] = peer
        return peer

    def connected_peers(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.sid is not None]

    def joined_peers(self, exclude: Peer | None = None) -> list[Peer]:
        return [p for p in self.peers.values() if p.joined and not p.closed and p is not exclude]

    def socket_connected(self) -> None:
        if self._empty_timer is not None:
            self._empty_timer.cancel()
            self._empty_timer = None

    @property
    def router(self) -> "Router | None":
        """The room's first live router (the only one until the room spreads)."""
        live = self.live_routers()
        return live[0] if live else None

    def live_routers(self) -> list["Router"]:
        return [r for r in self.routers if not r.closed]

    async def router_for(self, peer: Peer) -> "Router":
        """The peer's router: the room's first with fewer than ROUTER_SCALE_SIZE peers, else the
        room's router on the least-loaded worker, made there if need be.

        Serialized: peers connecting at once never make two routers where one will do.
        """
        async with self._router_lock:
            if peer.router is not None and not peer.router.closed:
                return peer.router
            live = self.live_routers()
            router = next((r for r in live if r.peer_count < self.config.router_scale_size), None)
            if router is None:
                worker = self.pool.least_loaded()
                router = next((r for r in live if r.worker is worker), None) or await self._new_router(worker)
            router.peer_count += 1
            peer.router = router
            return router

    async def _new_router(self, worker: "Worker") -> "Router":
        """A router on `worker`, with every producer of the room piped into it."""
        router = await worker.create_router(router_rtp_capabilities())
        router.once("workerclose", lambda: self._on_router_lost(router))
        router.on("activespeaker", lambda producer_id: self._on_active_speaker(router, producer_id))
        self.routers.append(router)
        log.info("room %s: router %s on media worker %d (%d router(s))", self.id, router.id, worker.index,
                 len(self.live_routers()))
        for peer in list(self.peers.values()):
            for producer in list(peer.producers.values()):
                await self._pipe(producer, router)
        return router

    async def pipe_to_other_routers(self, producer: "Producer") -> None:
        """A new producer becomes consumable on every router of the room."""
        for router in self.live_routers():
            if router is not producer.transport.router:
                await self._pipe(producer, router)

    async def _pipe(self, producer: "Producer", router: "Router") -> None:
        source = producer.transport.router
        if producer.closed or source.closed or router.closed:
            return
        try:
            await source.pipe_producer(producer, router, PIPE_LISTEN_IP,
                                       (self.config.rtc_min_port, self.config.rtc_max_port))
        except MediaError as exc:
            log.warning("room %s: piping producer %s to router %s failed: %s", self.id, producer.id, router.id, exc)

    def _on_active_speaker(self, router: "Router", producer_id: str) -> None:
        """`activeSpeaker` {peerId} to every peer; every router sees every producer, the first one tells."""
        if router is not self.router:
            return
        speaker = next((p for p in self.peers.values() if producer_id in p.producers), None)
        if speaker is None or speaker.id == self.active_speaker:
            return
        self.active_speaker = speaker.id
        self.notifier.broadcast(self.joined_peers(), "activeSpeaker", {"peerId": speaker.id})

    def _on_router_lost(self, router: "Router") -> None:
        """Its worker died: the media of the peers on it is gone, so those peers are closed."""
        lost = [p for p in self.peers.values() if p.router is router]
        log.warning("room %s lost media worker %d: closing its %d peer(s)", self.id, router.worker.index, len(lost))
        for peer in lost:
            self.spawn(self.close_peer(peer))

    async def close_peer(self, peer: Peer, tell_others: bool = True) -> None:
        """Close the peer's media and socket; its id and token stop working."""
        if peer.closed:
            return
        peer.closed = True
        peer.cancel_grace()
        self.peers.pop(peer.id, None)
        if peer.router is not None:
            peer.router.peer_count -= 1
        if peer.sid is not None:
            self.notifier.disconnect(peer.sid)
            peer.sid = None
        if tell_others and peer.joined:
            self.notifier.broadcast(self.peers.values(), "peerClosed", {"peerId": peer.id})
        for transport in list(peer.transports.values()):
            await transport.close()
        log.info("room %s: peer %s closed", self.id, peer.id)
        if not self.closed and not self.occupied():
            self._arm_empty_timer(self.config.room_empty_timeout)

    def occupied(self) -> bool:
        """Whether a peer is in the room: connected, connecting, or dropped and within its grace.

        Tokens never used do not count: they are dropped when the room closes.
        """
        return any(p.ready or p.sid is not None for p in self.peers.values())

    def _arm_empty_timer(self, delay: float) -> None:
        if self._empty_timer is not None:
            self._empty_timer.cancel()
        loop = asyncio.get_running_loop()
        self._empty_timer = loop.call_later(delay, lambda: self.spawn(self.close()))

    async def close(self) -> None:
        """The registry forgets the room at once; then every peer (no peerClosed) and router close."""
        if self.closed:
            return
        self.closed = True
        if self._empty_timer is not None:
            self._empty_timer.cancel()
        self._on_close(self)
        for peer in list(self.peers.values()):
            await self.close_peer(peer, tell_others=False)
        for router in self.live_routers():
            try:
                await router.close()
            except MediaError as exc:
                log.warning("room %s: closing router %s: %s", self.id, router.id, exc)
        log.info("room %s closed", self.id)

    def spawn(self, coro: Any) -> None:
        """Run a room task in the background; failures are logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("room %s: task failed", self.id, exc_info=task.exception())
