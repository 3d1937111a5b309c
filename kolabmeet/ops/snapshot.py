"""What operators see of a running server: one place that reads rooms, peers and media objects.

`GET /stats`, the console and the metrics all read through here, so they agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator

from kolabmeet.media.errors import MediaError

if TYPE_CHECKING:
    from kolabmeet.signaling.peer import Peer
    from kolabmeet.signaling.room import Room
    from kolabmeet.signaling.rooms import Rooms


class NotFound(LookupError):
    """No room, peer or media object has that id."""


async def stats(rooms: "Rooms") -> dict[str, Any]:
    """Every room's peers with the getStats of their transports, producers and consumers."""
    return {room_id: await room_stats(room) for room_id, room in list(rooms.rooms.items())}


async def room_stats(room: "Room") -> dict[str, Any]:
    peers = {}
    for peer in list(room.peers.values()):
        peers[peer.id] = {
            "id": peer.id,
            "nickname": peer.nickname,
            "transports": await _stats_of(peer.transports.values()),
            "producers": await _stats_of(peer.producers.values()),
            "consumers": await _stats_of(peer.consumers.values()),
        }
    return peers


async def _stats_of(objects: Iterable[Any]) -> list[Any]:
    return [stats for _obj, stats in await stats_by_object(objects)]


async def stats_by_object(objects: Iterable[Any]) -> list[tuple[Any, Any]]:
    """(object, getStats()) of each object; one that closed meanwhile is left out."""
    result = []
    for obj in list(objects):
        try:
            result.append((obj, await obj.get_stats()))
        except MediaError:
            continue
    return result


def all_peers(rooms: "Rooms") -> Iterator["Peer"]:
    for room in list(rooms.rooms.values()):
        yield from list(room.peers.values())


def find_room(rooms: "Rooms", room_id: str) -> "Room":
    room = rooms.get(room_id)
    if room is None:
        raise NotFound(f"no room {room_id}")
    return room


def find_peer(rooms: "Rooms", peer_id: str) -> "Peer":
    for peer in all_peers(rooms):
        if peer.id == peer_id:
            return peer
    raise NotFound(f"no peer {peer_id}")


def find_object(rooms: "Rooms", object_id: str) -> tuple[str, Any]:
    """(kind, object) of the transport, producer, consumer or router with this id."""
    for peer in all_peers(rooms):
        for kind, objects in (("transport", peer.transports), ("producer", peer.producers),
                              ("consumer", peer.consumers)):
            if object_id in objects:
                return kind, objects[object_id]
        if peer.router is not None and peer.router.id == object_id:
            return "router", peer.router
    raise NotFound(f"no transport, producer, consumer or router {object_id}")


def rooms_table(rooms: "Rooms") -> list[dict[str, Any]]:
    return [{"room": room.id, "peers": len(room.peers), "joined": len(room.joined_peers()),
             "routers": len(room.live_routers())} for room in list(rooms.rooms.values())]


def peers_table(rooms: "Rooms", room_id: str | None = None) -> list[dict[str, Any]]:
    return [{"peer": peer.id, "room": peer.room_id, "nickname": peer.nickname, "role": peer.role,
             "joined": peer.joined, "connected": peer.sid is not None, "transports": len(peer.transports),
             "producers": len(peer.producers), "consumers": len(peer.consumers)}
            for peer in all_peers(rooms) if room_id in (None, peer.room_id)]


def media_table(rooms: "Rooms", kind: str, peer_id: str | None = None) -> list[dict[str, Any]]:
    """The transports, producers or consumers (`kind`) of every peer, or of one."""
    rows = []
    for peer in all_peers(rooms):
        if peer_id not in (None, peer.id):
            continue
        for obj in list(getattr(peer, kind + "s").values()):
            row: dict[str, Any] = {kind: obj.id, "peer": peer.id}
            if kind == "transport":
                row.update(type=type(obj).__name__, ice=getattr(obj, "ice_state", None),
                           dtls=getattr(obj, "dtls_state", None), closed=obj.closed)
            elif kind == "producer":
                row.update(kind=obj.kind, type=obj.type, paused=obj.paused, source=_source(obj.app_data))
            else:
                row.update(kind=obj.kind, type=obj.type, paused=obj.paused, producer=obj.producer_id,
                           score=obj.score.get("score"))
            rows.append(row)
    return rows


def _source(app_data: Any) -> Any:
    return app_data.get("source") if isinstance(app_data, dict) else None
