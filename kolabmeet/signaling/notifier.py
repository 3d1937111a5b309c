"""Messages from the server to sockets: notifications, requests with ack, disconnects."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Iterable

import socketio
from engineio import packet as engineio_packet
from socketio import packet

from kolabmeet.signaling.websocket import TEXT, frame_header

if TYPE_CHECKING:
    from kolabmeet.signaling.peer import Peer
    from kolabmeet.signaling.session import Session

log = logging.getLogger("kolabmeet.signaling")


class Notifier:
    """Sends to peers' current sockets: the signaling's own sessions (`sessions`, by socket.io id)
    and python-socketio's (clients that started on long-polling). Notifications are queued in call
    order."""

    def __init__(self, sio: socketio.AsyncServer, sessions: dict[str, "Session"]) -> None:
        self.sio = sio
        self.sessions = sessions
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def notify(self, peer: "Peer", method: str, data: Any = None, at_once: bool = False) -> None:
        """Event `notification` {method, data} to the peer, if it has a socket; `at_once` queues it
        now rather than at the next turn, for a notification that follows no ack of its own
        handler (roomReady: socket.io wrote the connect's ack before the handler ran), so that it
        leaves in the same write as what precedes it."""
        if peer.sid is not None:
            self._send([peer.sid], method, data, at_once)

    def to_sid(self, sid: str, method: str, data: Any = None) -> None:
        self._send([sid], method, data)

    def broadcast(self, peers: Iterable["Peer"], method: str, data: Any = None,
                  exclude: "Peer | None" = None) -> None:
        """The notification to every peer's socket but `exclude`'s."""
        sids = [peer.sid for peer in peers if peer is not exclude and peer.sid is not None]
        if sids:
            self._send(sids, method, data)

    def _send(self, sids: list[str], method: str, data: Any, at_once: bool = False) -> None:
        """Encoded once now; queued on each socket at the loop's next turn.

        python-socketio's emit runs a task per recipient, which cost more than the message
        itself when a join notifies a full room. The next turn, not now, keeps the order its
        emits had: a request handler's ack goes out before what the handler notified.
        """
        event = self.sio.packet_class(packet.EVENT, namespace="/", data=["notification",
                                                                         {"method": method, "data": data}])
        message = engineio_packet.Packet(engineio_packet.MESSAGE, event.encode())
        if at_once:
            self._queue(sids, message)
        else:
            asyncio.get_running_loop().call_soon(self._queue, sids, message)

    def _queue(self, sids: list[str], message: engineio_packet.Packet) -> None:
        sessions = self.sessions
        payload = message.encode().encode()
        frame = frame_header(TEXT, len(payload)) + payload
        for sid in sids:
            session = sessions.get(sid)
            if session is not None:
                session.write_frame(frame, hold=True)
                continue
            socket = self.sio.eio.sockets.get(self.sio.manager.eio_sid_from_sid(sid, "/"))
            if socket is not None and not socket.closed:
                socket.queue.put_nowait(message)

    async def request(self, peer: "Peer", method: str, data: Any, timeout: float) -> Any:
        """Event `request` {method, data} with an ack; raises socketio TimeoutError."""
        if peer.sid is None:
            raise socketio.exceptions.TimeoutError()
        payload = {"method": method, "data": data}
        session = self.sessions.get(peer.sid)
        if session is not None:
            return await session.call(payload, timeout)
        return await self.sio.call("request", payload, to=peer.sid, timeout=timeout)

    def disconnect(self, sid: str) -> None:
        session = self.sessions.get(sid)
        self._spawn(session.disconnect(sid) if session is not None else self.sio.disconnect(sid))

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for what was queued (when closing the server); cancel the rest.

        A socket whose client stopped reading never takes its last packets.
        """
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("closing: %d message(s) to clients not sent in %.0f s, dropped", len(pending), timeout)
            await asyncio.gather(*pending, return_exceptions=True)
