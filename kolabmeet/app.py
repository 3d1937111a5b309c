"""The server: HTTP API, signaling and media workers, started and stopped together."""

from __future__ import annotations

import logging
import ssl

from aiohttp import web

from kolabmeet.api.auth import token_middleware
from kolabmeet.api.demo import DEMO_PREFIX, Demo
from kolabmeet.api.routes import Api
from kolabmeet.api.webhooks import Webhooks
from kolabmeet.config import Config
from kolabmeet.media.pool import WorkerPool
from kolabmeet.ops.console_server import ConsoleServer
from kolabmeet.ops.dashboard import DASHBOARD_PREFIX, Dashboard
from kolabmeet.ops.metrics import CONTENT_TYPE, Metrics
from kolabmeet.signaling.rooms import Rooms
from kolabmeet.signaling.server import SIGNALING_PATH, Signaling

log = logging.getLogger("kolabmeet")

SHUTDOWN_TIMEOUT = 2.0

# The socket.io endpoint (the web client adds the slash) is the only path without X-Auth-Token.
SIGNALING_PATHS = frozenset({"/" + SIGNALING_PATH, "/" + SIGNALING_PATH + "/"})


class Server:
    """One kolabmeet server. `in_process_workers` runs media workers in this event loop (tests).

    In dev mode it also serves the demo page (`/meetmedia/demo/`).
    """

    def __init__(self, config: Config, in_process_workers: bool = False) -> None:
        self.config = config
        self.pool = WorkerPool(config.num_workers, config.webrtc_listen_ip, config.webrtc_announced_address,
                               config.webrtc_port_base, in_process=in_process_workers, pin=config.pin_workers)
        self.webhooks = Webhooks(config.webhook_url, config.webhook_token)
        self.signaling = Signaling(config, self.webhooks)
        self.rooms = Rooms(config, self.pool, self.signaling.notifier, self.webhooks)
        self.pool.on_worker_died = self.rooms.worker_died
        self.app = web.Application(
            client_max_size=config.max_body_size,
            middlewares=[token_middleware(config.auth_token, SIGNALING_PATHS,
                                          (DASHBOARD_PREFIX, DEMO_PREFIX) if config.dev else (DASHBOARD_PREFIX,))],
        )
        self.metrics = Metrics(self)
        self.signaling.on_request_done = self.metrics.request_done
        self.app.add_routes(Api(config, self.rooms, self.signaling.notifier).routes())
        self.app.add_routes([web.get("/metrics", self._metrics)])
        self.app.add_routes(Dashboard(config, self.rooms).routes())
        if config.dev:
            self.app.add_routes(Demo(config, self.rooms).routes())
        self.signaling.attach(self.app, self.rooms)
        self._runner: web.AppRunner | None = None
        self._stopped = False
        self._metrics_runner: web.AppRunner | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None
        self.console = ConsoleServer(self, config.console_socket) if config.console_socket else None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.config.ssl_cert, self.config.ssl_key)
        return context

    async def start(self) -> None:
        """Start the workers, then listen. The bound port is in `self.port`."""
        ssl_context = self._ssl_context()
        await self.pool.start()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        host, port = self.config.listening_host, self.config.listening_port
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            await self.pool.close()
            raise OSError(exc.errno, f"LISTENING_HOST/LISTENING_PORT {host}:{port}: {exc.strerror}") from exc
        self.port = self._runner.addresses[0][1]
        try:
            if self.console is not None:
                await self.console.start()
            if self.config.metrics_listen is not None:
                await self._start_metrics_listener(*self.config.metrics_listen)
        except OSError:
            await self.stop()
            raise
        scheme = "https" if ssl_context else "http"
        log.info("listening on %s://%s:%d", scheme, self.config.listening_host, self.port)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=await self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _start_metrics_listener(self, host: str, port: int) -> None:
        """GET /metrics alone, without the token: for a scraper on a network the operator trusts."""
        app = web.Application()
        app.add_routes([web.get("/metrics", self._metrics)])
        self._metrics_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._metrics_runner.setup()
        try:
            await web.TCPSite(self._metrics_runner, host, port).start()
        except OSError as exc:
            raise OSError(exc.errno, f"KOLABMEET_METRICS_LISTEN {host}:{port}: {exc.strerror}") from exc
        self.metrics_port = self._metrics_runner.addresses[0][1]
        log.info("metrics on http://%s:%d/metrics", host, self.metrics_port)

    async def stop(self) -> None:
        """Close rooms, sockets, listeners and workers; a second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        if self.console is not None:
            await self.console.close()
        await self.rooms.close()
        await self.signaling.close()
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()
        await self.pool.close()
        await self.webhooks.close()
