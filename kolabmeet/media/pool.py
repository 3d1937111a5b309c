"""The media workers of this server: started, picked by load, replaced when one dies."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Callable

from kolabmeet.media.errors import MediaError, WorkerDiedError
from kolabmeet.media.worker import compiled
from kolabmeet.media.worker_proxy import Worker

log = logging.getLogger("kolabmeet.media")

RESPAWN_DELAY = 0.2


class WorkerPool:
    """N worker processes. `on_worker_died(worker)` runs after a death, before the replacement."""

    def __init__(self, count: int, listen_ip: str, announced_address: str | None, port_base: int,
                 in_process: bool = False, pin: bool = False) -> None:
        self.count = count
        self.pin = pin
        self.listen_ip = listen_ip
        self.announced_address = announced_address
        self.port_base = port_base
        self.in_process = in_process
        self.workers: list[Worker] = []
        self.on_worker_died: Callable[[Worker], Any] | None = None
        self.closed = False
        self._respawns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.workers = list(await asyncio.gather(*(self._start_one(i) for i in range(self.count))))
        log.info("started %d media worker(s): pids %s; compiled twins: %s", self.count,
                 ", ".join(str(w.pid) for w in self.workers), ", ".join(compiled.available()) or
                 ("none (KOLABMEET_NO_EXTENSIONS=1)" if compiled.DISABLED else "none built (no C compiler?)"))

    async def _start_one(self, index: int) -> Worker:
        worker = await (Worker.in_process(index) if self.in_process else Worker.spawn(index))
        if self.pin and not self.in_process:
            _pin(worker, index)
        try:
            port = self.port_base + index if self.port_base else 0
            await worker.create_webrtc_server(self.listen_ip, self.announced_address, port)
        except MediaError:
            await worker.close()
            raise
        worker.once("died", lambda: self._on_died(worker))
        return worker

    def least_loaded(self) -> Worker:
        """The live worker with the fewest peers (then routers)."""
        live = [w for w in self.workers if not w.closed]
        if not live:
            raise WorkerDiedError("no media worker is running")
        return min(live, key=lambda w: w.load)

    def _on_died(self, worker: Worker) -> None:
        if self.closed:
            return
        if self.on_worker_died is not None:
            self.on_worker_died(worker)
        task = asyncio.get_running_loop().create_task(self._replace(worker))
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)

    async def _replace(self, dead: Worker) -> None:
        await asyncio.sleep(RESPAWN_DELAY)
        if self.closed:
            return
        try:
            fresh = await self._start_one(dead.index)
        except (OSError, MediaError):
            log.exception("could not start a replacement for media worker %d", dead.index)
            return
        self.workers = [fresh if w is dead else w for w in self.workers]
        log.warning("media worker %d replaced: new pid %d", dead.index, fresh.pid)

    async def close(self) -> None:
        self.closed = True
        for task in list(self._respawns):
            task.cancel()
        await asyncio.gather(*(w.close() for w in self.workers), return_exceptions=True)


def _pin(worker: Worker, index: int) -> None:
    """Bind the worker to one CPU: the scheduler then never moves it, nor runs it where another worker runs
    (on a shared machine its cost per packet otherwise varies by 20 % and more with where it lands)."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[index % len(cpus)]
    try:
        os.sched_setaffinity(worker.pid, {cpu})
    except OSError as exc:
        log.warning("media worker %d: could not bind it to CPU %d: %s", index, cpu, exc.strerror)
        return
    log.info("media worker %d (pid %d) bound to CPU %d", index, worker.pid, cpu)
