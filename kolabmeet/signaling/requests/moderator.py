"""Moderator requests: roles, language, join requests, kicking, closing the room."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from kolabmeet.signaling.context import Context
from kolabmeet.signaling.errors import ForbiddenError, RequestError
from kolabmeet.signaling.roles import Role, parse_role

_LANGUAGE = re.compile(r"[a-z]{2}")


def _role_change(ctx: Context, data: dict[str, Any]) -> tuple[Any, int]:
    ctx.require(Role.MODERATOR, "changing roles")
    target = ctx.target(data)
    try:
        role = parse_role(data.get("role"))
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    if role & Role.OWNER:
        raise ForbiddenError("the OWNER role cannot be given or taken")
    return target, role


async def add_role(ctx: Context, data: dict[str, Any]) -> None:
    target, role = _role_change(ctx, data)
    if target.role & role:
        return
    target.role |= role
    if role & Role.PUBLISHER and target.raised_hand:
        target.raised_hand = False
        ctx.to_all("changeRaisedHand", {"peerId": target.id, "raisedHand": False})
    ctx.to_all("changeRole", {"peerId": target.id, "role": target.role})


async def remove_role(ctx: Context, data: dict[str, Any]) -> None:
    target, role = _role_change(ctx, data)
    if not target.role & role:
        return
    if role & Role.MODERATOR and target.role & Role.OWNER:
        raise ForbiddenError("the MODERATOR role of an OWNER cannot be taken")
    target.role &= ~role
    if role & Role.PUBLISHER and target.language is not None:
        target.language = None
        ctx.to_all("changeLanguage", {"peerId": target.id, "language": None})
    ctx.to_all("changeRole", {"peerId": target.id, "role": target.role})


async def change_language(ctx: Context, data: dict[str, Any]) -> None:
    ctx.require(Role.MODERATOR, "changing a language")
    target = ctx.target(data)
    language = data.get("language")
    if language not in (None, "") and not (isinstance(language, str) and _LANGUAGE.fullmatch(language)):
        raise RequestError("language must be two lowercase letters, empty or null")
    if language != target.language:
        target.language = language
        ctx.to_all("changeLanguage", {"peerId": target.id, "language": language})


def _join_request(event: str) -> Any:
    async def answer(ctx: Context, data: dict[str, Any]) -> None:
        ctx.require(Role.MODERATOR, "answering a join request")
        payload = {"requestId": data.get("requestId"), "roomId": ctx.room.id, "event": event}
        asyncio.get_running_loop().call_soon(ctx.webhooks.send, payload)

    answer.__doc__ = f"Answer a join request; the webhook {event} follows the answer."
    return answer


join_request_accept = _join_request("joinRequestAccepted")
join_request_deny = _join_request("joinRequestDenied")


async def kick_peer(ctx: Context, data: dict[str, Any]) -> None:
    ctx.require(Role.MODERATOR, "kicking a peer")
    target = ctx.target(data)
    ctx.notifier.notify(target, "moderator:kickPeer", {})
    ctx.room.spawn(ctx.room.close_peer(target))


async def close_room(ctx: Context, data: dict[str, Any]) -> None:
    ctx.require(Role.OWNER, "closing the room")
    ctx.to_others("moderator:closeRoom", None)
    ctx.room.spawn(_close_after_answer(ctx))


async def _close_after_answer(ctx: Context) -> None:
    await asyncio.sleep(0)
    await ctx.room.close()
