"""A small WebDriver BiDi client that drives a headless Firefox ESR, kept off the network, for the browser tests."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import pathlib
import re
import shutil
import signal
import tempfile
from typing import Any

import aiohttp

FIREFOX = "/usr/bin/firefox-esr"
DEAD = "http://127.0.0.1:9/"  # the discard port: nothing listens there
PREFS: dict[str, bool | int | str] = {
    # Fake camera and microphone, no prompts, ICE on loopback only, autoplay allowed.
    "media.navigator.streams.fake": True, "media.navigator.permission.disabled": True,
    "media.peerconnection.ice.loopback": True, "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.force_interface": "lo", "media.autoplay.default": 0,
    "permissions.isolateBy.userContext": False,
    # No first-run pages, session restore or default-browser check.
    "browser.shell.checkDefaultBrowser": False, "browser.startup.page": 0, "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore", "startup.homepage_welcome_url": "about:blank",
    "browser.aboutwelcome.enabled": False, "browser.sessionstore.resume_from_crash": False,
    "toolkit.startup.max_resumed_crashes": -1, "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
    # Off the network: updates, studies, telemetry, safe browsing, remote settings, push, probes, downloads.
    "app.update.disabledForTesting": True, "app.update.auto": False, "app.normandy.enabled": False,
    "app.normandy.api_url": "", "app.shield.optoutstudies.enabled": False, "nimbus.rollouts.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False, "toolkit.telemetry.server": DEAD,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False, "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.newProfilePing.enabled": False, "toolkit.telemetry.firstShutdownPing.enabled": False,
    "datareporting.healthreport.uploadEnabled": False, "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.usage.uploadEnabled": False, "telemetry.fog.test.localhost_port": -1,
    "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False, "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False, "browser.safebrowsing.downloads.remote.url": "",
    **{f"browser.safebrowsing.provider.{p}.{u}": "" for p in ("google", "google4", "google5", "mozilla")
       for u in ("updateURL", "gethashURL")},
    "services.settings.server": DEAD, "security.remote_settings.intermediates.enabled": False,
    "security.remote_settings.crlite_filters.enabled": False, "security.OCSP.enabled": 0,
    "dom.push.enabled": False, "dom.push.connection.enabled": False, "dom.push.serverURL": "ws://127.0.0.1:9/",
    "network.captive-portal-service.enabled": False, "captivedetect.canonicalURL": "",
    "network.connectivity-service.enabled": False, "browser.region.network.url": "",
    "browser.region.update.enabled": False, "geo.provider.network.url": "", "browser.search.update": False,
    "media.gmp-manager.url": DEAD, "media.gmp-manager.updateEnabled": False, "media.gmp-gmpopenh264.autoupdate": False,
    "media.gmp-widevinecdm.autoupdate": False, "media.gmp-widevinecdm.enabled": False, "network.trr.mode": 5,
    "network.prefetch-next": False, "network.dns.disablePrefetch": True, "network.predictor.enabled": False,
    "network.http.speculative-parallel-limit": 0, "browser.places.speculativeConnect.enabled": False,
    "extensions.update.enabled": False, "extensions.systemAddon.update.enabled": False,
    "extensions.blocklist.enabled": False, "extensions.getAddons.cache.enabled": False,
    "browser.newtabpage.enabled": False, "browser.newtabpage.activity-stream.testing.shouldInitializeFeeds": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False, "browser.translations.enable": False,
    "browser.ml.enable": False, "identity.fxaccounts.enabled": False,
    # Catch-alls: every name resolves to 127.0.0.1, everything not on loopback goes to a dead proxy.
    "network.dns.forceResolve": "127.0.0.1", "network.proxy.type": 1, "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9, "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": 9,
    "network.proxy.socks": "127.0.0.1", "network.proxy.socks_port": 9, "network.proxy.socks_remote_dns": True,
    "network.proxy.no_proxies_on": "127.0.0.1,localhost", "network.proxy.allow_hijacking_localhost": False,
}
LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://\S+)")
# Playwright's convention: the source is evaluated; a function is called with the one argument.
CALL = "async (argJson) => {{ let v = (\n{}\n); if (typeof v === 'function') v = v(JSON.parse(argJson)); " \
       "return JSON.stringify(await v) ?? 'null'; }}"


class BidiError(Exception):
    """An error answer to a BiDi command, or an exception thrown by JavaScript in a page."""


def write_profile(profile: pathlib.Path, allow_origins: list[str]) -> None:
    """Write the prefs and the camera and microphone permissions of the allowed origins into a fresh profile."""
    permissions = profile / "permissions.txt"
    permissions.write_text("".join(f"origin\t{kind}\t1\t{origin}\n" for origin in allow_origins
                                   for kind in ("camera", "microphone")))
    prefs = {**PREFS, "permissions.manager.defaultsUrl": permissions.as_uri()}
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                                             for k, v in prefs.items()))


class Firefox:
    """One headless Firefox process and its BiDi session."""

    def __init__(self, proc: asyncio.subprocess.Process, profile: pathlib.Path) -> None:
        self.proc, self.profile = proc, profile
        self.stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._drain = asyncio.create_task(self._read_stderr())
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, FirefoxPage] = {}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def launch(cls, allow_origins: list[str]) -> Firefox:
        """Start Firefox with a fresh profile granting camera and microphone to `allow_origins`."""
        profile = pathlib.Path(tempfile.mkdtemp(prefix="kolabmeet-firefox-"))
        write_profile(profile, allow_origins)
        env = {**os.environ, "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"}
        proc = await asyncio.create_subprocess_exec(
            FIREFOX, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", "0",
            "about:blank", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        browser = cls(proc, profile)
        try:
            await browser._connect(await asyncio.wait_for(browser._url, 30))
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _read_stderr(self) -> None:
        """Keep Firefox's stderr drained, remembering its last lines and the BiDi address it announces."""
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())
            if (match := LISTENING.search(line)) and not self._url.done():
                self._url.set_result(match.group(1).decode())
        if not self._url.done():
            self._url.set_exception(BidiError("Firefox exited before listening: " + "\n".join(self.stderr)))

    async def _connect(self, url: str) -> None:
        """Open the BiDi websocket, start a session and subscribe to console entries."""
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(url + "/session", max_msg_size=0)
        self._reader = asyncio.create_task(self._read(self._ws))
        await self.send("session.new", {"capabilities": {}})
        await self.send("session.subscribe", {"events": ["log.entryAdded"]})

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Route command answers to their callers and console entries to their pages."""
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if (future := self._pending.get(data.get("id", -1))) and not future.done():
                future.set_result(data)
            elif data.get("method") == "log.entryAdded":
                page = self._pages.get(data["params"].get("source", {}).get("context", ""))
                if page is not None:
                    page.console.append(data["params"].get("text") or "")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BidiError("the BiDi connection closed"))

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one BiDi command and return its result, raising `BidiError` for an error answer."""
        if self._ws is None or self._reader is None or self._reader.done():
            raise BidiError("the BiDi connection is closed")
        command_id = next(self._ids)
        future = self._pending[command_id] = asyncio.get_running_loop().create_future()
        try:
            await self._ws.send_json({"id": command_id, "method": method, "params": params})
            answer = await future
        finally:
            del self._pending[command_id]
        if answer.get("type") == "error":
            raise BidiError(f"{method}: {answer.get('error')}: {answer.get('message')}")
        return answer["result"]

    async def new_page(self) -> FirefoxPage:
        """Open a tab in a user context of its own (separate cookies and storage)."""
        user_context = (await self.send("browser.createUserContext", {}))["userContext"]
        context = (await self.send("browsingContext.create", {"type": "tab", "userContext": user_context}))["context"]
        page = self._pages[context] = FirefoxPage(self, context, user_context)
        return page

    async def close(self) -> None:
        """Close the browser, killing its process group after 5 s, and remove the profile."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("browser.close", {}), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 5)
        with contextlib.suppress(ProcessLookupError):  # the group may hold content processes still
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        for task in (self._reader, self._drain):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class FirefoxPage:
    """One tab in its own user context."""

    def __init__(self, browser: Firefox, context: str, user_context: str) -> None:
        self.browser, self.context, self.user_context = browser, context, user_context
        self.console: list[str] = []

    async def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        await self.browser.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, source: str, arg: Any = None) -> Any:
        """Evaluate `source` as Playwright does: a function is called with `arg`; the JSON of the result comes back."""
        result = await self.browser.send("script.callFunction", {
            "functionDeclaration": CALL.format(source.strip().rstrip(";")), "awaitPromise": True,
            "target": {"context": self.context}, "arguments": [{"type": "string", "value": json.dumps(arg)}],
            "resultOwnership": "none"})
        if result["type"] == "exception":
            raise BidiError(result["exceptionDetails"]["text"])
        return json.loads(result["result"]["value"])

    async def close(self) -> None:
        """Close the tab and remove its user context."""
        self.browser._pages.pop(self.context, None)
        await self.browser.send("browsingContext.close", {"context": self.context})
        await self.browser.send("browser.removeUserContext", {"userContext": self.user_context})
