"""Room events POSTed to the Kolab app: fire and forget, 5 s timeout, failures logged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

log = logging.getLogger("kolabmeet.webhooks")

WEBHOOK_TIMEOUT = 5.0


class Webhooks:
    """Sends `{..., "event": ...}` JSON to WEBHOOK_URL with `X-Auth-Token: WEBHOOK_TOKEN`."""

    def __init__(self, url: str | None, token: str) -> None:
        self.url = url
        self.token = token
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0
        """POSTs that failed or were answered with an error status."""

    def send(self, payload: dict[str, Any]) -> None:
        """Queue one POST; never blocks the caller."""
        if not self.url:
            return
        task = asyncio.get_running_loop().create_task(self._post(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, payload: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT))
        try:
            async with self._session.post(self.url, json=payload, headers={"X-Auth-Token": self.token}) as resp:
                if resp.status >= 400:
                    self.failures += 1
                    log.warning("webhook %s answered %d for %s", self.url, resp.status, payload.get("event"))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.failures += 1
            log.warning("webhook %s failed for %s: %r", self.url, payload.get("event"), exc)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=WEBHOOK_TIMEOUT)
        if self._session is not None:
            await self._session.close()
