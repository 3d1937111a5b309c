"""The control process's handle on one media worker process."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Any, Callable

from pyee import EventEmitter

from kolabmeet import ids
from kolabmeet.media.channel import Channel, ChannelClosedError, ChannelFrameError
from kolabmeet.media.errors import ChannelTimeoutError, InvalidStateError, MediaError, WorkerDiedError

if TYPE_CHECKING:
    from kolabmeet.media.router import Router

log = logging.getLogger("kolabmeet.media")

REQUEST_TIMEOUT = 10.0
Subscriber = Callable[[str, Any], None]


def _expire(future: asyncio.Future[Any]) -> None:
    """A request's timer: its answer did not come in time."""
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


class Worker(EventEmitter):
    """Sends requests to a worker, routes its notifications, notices its death.

    Events: "died" once, when the worker goes away unasked.
    """

    def __init__(self, index: int, channel: Channel, process: asyncio.subprocess.Process | None,
                 task: asyncio.Task[None] | None = None) -> None:
        super().__init__()
        self.index = index
        self.pid = process.pid if process else os.getpid()
        self.channel = channel
        self.routers: dict[str, "Router"] = {}
        self.webrtc_server: dict[str, Any] | None = None
        self.closed = False
        self.died = False
        self._process = process
        self._task = task
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subscribers: dict[str, Subscriber] = {}
        self._reaping: asyncio.Task[None] | None = None
        channel.listen(self._on_message_safely, self._channel_lost)

    @classmethod
    async def spawn(cls, index: int, env: dict[str, str] | None = None) -> "Worker":
        """Start a worker process connected by a socket pair."""
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "kolabmeet.media.worker", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), env={**os.environ, "KOLABMEET_WORKER_INDEX": str(index), **(env or {})},
            )
        finally:
            theirs.close()
        return cls(index, await Channel.from_socket(ours), process)

    @classmethod
    async def in_process(cls, index: int = 0) -> "Worker":
        """A worker served inside the current event loop (for tests and debugging)."""
        from kolabmeet.media.worker.server import run_in_process

        ours, theirs = socket.socketpair()
        task = run_in_process(theirs)
        return cls(index, await Channel.from_socket(ours), None, task)

    @property
    def load(self) -> int:
        """How busy the worker is: peers on its routers, then routers as a tie-break."""
        return sum(router.peer_count for router in self.routers.values()) * 1000 + len(self.routers)

    def subscribe(self, target_id: str, handler: Subscriber) -> None:
        self._subscribers[target_id] = handler

    def unsubscribe(self, target_id: str) -> None:
        self._subscribers.pop(target_id, None)

    async def request(self, method: str, handler_id: str = "", data: dict[str, Any] | None = None,
                      timeout: float = REQUEST_TIMEOUT) -> Any:
        """Send a request; its answer, or a MediaError that says why not."""
        if self.closed:
            if self.died:
                raise WorkerDiedError(f"media worker {self.index} is gone")
            raise InvalidStateError("worker closed")
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[request_id] = future
        # A timer on the future itself rather than asyncio.wait_for, which adds a waiter future
        # and callbacks to every request (two per join are transports made on the worker).
        expiry = loop.call_later(timeout, _expire, future)
        try:
            self.channel.send({"id": request_id, "method": method, "handlerId": handler_id, "data": data or {}})
            return await future
        except ChannelClosedError as exc:
            raise WorkerDiedError(f"media worker {self.index} is gone") from exc
        except asyncio.TimeoutError:
            raise ChannelTimeoutError(f"media worker {self.index} did not answer {method} in {timeout} s") from None
        finally:
            expiry.cancel()
            self._pending.pop(request_id, None)

    async def request_quietly(self, method: str, handler_id: str = "", data: dict[str, Any] | None = None) -> None:
        """A request whose failure changes nothing (closing what may be gone already)."""
        try:
            await self.request(method, handler_id, data)
        except MediaError as exc:
            log.debug("%s %s: %s", method, handler_id, exc)

    async def create_router(self, rtp_capabilities: dict[str, Any]) -> "Router":
        from kolabmeet.media.router import Router

        router_id = ids.uuid4()
        await self.request("worker.createRouter", "", {"routerId": router_id})
        router = Router(router_id, self, rtp_capabilities)
        self.routers[router_id] = router
        return router

    async def create_webrtc_server(self, listen_ip: str, announced_address: str | None, port: int) -> dict[str, Any]:
        """Open the worker's shared WebRTC port (UDP and TCP); port 0 picks a free one."""
        self.webrtc_server = await self.request("worker.createWebRtcServer", "", {
            "listenIp": listen_ip, "announcedAddress": announced_address, "port": port})
        return self.webrtc_server

    async def dump(self) -> dict[str, Any]:
        return await self.request("worker.dump")

    async def get_resource_usage(self) -> dict[str, Any]:
        return await self.request("worker.getResourceUsage")

    def _on_message_safely(self, message: dict[str, Any]) -> None:
        try:
            self._on_message(message)
        except Exception:  # a malformed message must not cut the worker off
            log.exception("media worker %d: a message from it could not be handled", self.index)

    def _channel_lost(self, error: ChannelClosedError) -> None:
        if isinstance(error, ChannelFrameError):
            log.error("media worker %d: %s", self.index, error)
        self._on_channel_closed()

    def _on_message(self, message: dict[str, Any]) -> None:
        if "targetId" in message:
            handler = self._subscribers.get(message["targetId"])
            if handler is None:
                return
            try:
                handler(message.get("event", ""), message.get("data"))
            except Exception:  # a fault in one handler must not cut the worker off
                log.exception("media worker %d: handling %s of %s failed", self.index, message.get("event"),
                              message["targetId"])
            return
        future = self._pending.get(message.get("id", -1))
        if future is None or future.done():
            return
        if message.get("accepted"):
            future.set_result(message.get("data"))
        elif message.get("error") == "InvalidStateError":
            future.set_exception(InvalidStateError(message.get("reason", "")))
        else:
            future.set_exception(MediaError(message.get("reason", "worker refused the request")))

    def _on_channel_closed(self) -> None:
        unasked = not self.closed
        self.closed = True
        if unasked:
            self.died = True
            log.error("media worker %d (pid %d) died: its channel closed", self.index, self.pid)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerDiedError(f"media worker {self.index} is gone"))
        for router in list(self.routers.values()):
            router.worker_closed()
        if unasked:
            self.emit("died")
            self._reaping = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Collect the dead process's exit status (killing it if it lingers)."""
        if self._process is None:
            return
        try:
            code = await asyncio.wait_for(self._process.wait(), 2.0)
        except asyncio.TimeoutError:
            self._process.kill()
            code = await self._process.wait()
        log.error("media worker %d (pid %d) exit code %s", self.index, self.pid, code)

    async def close(self) -> None:
        """Stop the worker and wait for it to exit (when it died, for its exit to be collected)."""
        if self.closed:
            if self._reaping is not None:
                await asyncio.gather(self._reaping, return_exceptions=True)
            return
        self.closed = True
        self.channel.close()
        for router in list(self.routers.values()):
            router.worker_closed()
        if self._process is not None:
            try:
                await asyncio.wait_for(self._process.wait(), 3.0)
            except asyncio.TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
