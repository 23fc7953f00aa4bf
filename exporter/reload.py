"""Reload the configuration on ``SIGHUP`` or ``POST /-/reload``, as Prometheus does.

A new configuration that fails validation changes nothing: the old one keeps running, the error
is logged and ``maxcompute_exporter_config_last_reload_successful`` goes to 0. A good one
replaces the running parts: the old scheduler stops, its polls in flight are cancelled, new
pollers start, their first poll at once. What the new configuration leaves unchanged goes on
(``reload_carry``): each unchanged target's published state, client, learned rate and schedule;
the HTTP clients of the others are closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from prometheus_client.registry import CollectorRegistry

from exporter.config import Config, ConfigError, Target
from exporter.metrics.reload_status import ReloadStatus
from exporter.polling.schedule.poller import TargetPoller
from exporter.polling.schedule.scheduling import PollScheduler, ScheduledPoll
from exporter.web.webconfig import WebConfig

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.reload")

# Reading and checking the files may take this long; past it the reload fails.
LOAD_LIMIT_SECONDS = 20.0


class RunningExporter(Protocol):
    """What a reload swaps (``wiring.Exporter``)."""

    config: Config
    pollers: list[TargetPoller]
    # Polls beside the running-jobs ones, each on its own schedule (the quota poll).
    other_polls: list[ScheduledPoll]

    def first_poll_at(self, target: Target) -> float | None:
        """When ``target``'s first poll is due (Unix seconds), or None: at once."""
        ...

    async def aclose(self) -> None: ...


class ConfigReloader:
    """Owns the running exporter and its scheduler; ``reload()`` swaps them for a new config.

    ``load`` reads the configuration (raising ``ConfigError``); ``build`` makes the running
    parts from it; ``registry_of`` gives the registry the reload gauges are served from;
    ``on_swap`` tells the web server which exporter to serve. ``load_web`` and ``apply_web``,
    when given, read ``--web.config.file`` again and hand it to the web server; a mistake in
    either file keeps both old ones.
    """

    def __init__(
        self,
        load: Callable[[], Config],
        build: Callable[[Config], RunningExporter],
        registry_of: Callable[[RunningExporter], CollectorRegistry],
        on_swap: Callable[[RunningExporter], None],
        status: ReloadStatus | None = None,
        load_web: Callable[[], WebConfig] | None = None,
        apply_web: Callable[[WebConfig], None] | None = None,
    ) -> None:
        self._load = load
        self._load_web = load_web
        self._apply_web = apply_web
        self._build = build
        self._registry_of = registry_of
        self._on_swap = on_swap
        self.status = status or ReloadStatus()
        self._lock = asyncio.Lock()
        self.current: RunningExporter | None = None
        self._scheduler: PollScheduler | None = None

    def start(self, exporter: RunningExporter) -> None:
        """Serve and poll ``exporter``; call from within the running event loop."""
        self._registry_of(exporter).register(self.status)
        self.current = exporter
        self._on_swap(exporter)
        config = exporter.config
        self._scheduler = PollScheduler(
            exporter.pollers,
            config.poll.interval,
            exporter.other_polls,
            lambda t: config.poll_for(t).interval,
            exporter.first_poll_at,
        )
        self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler is not None:
            await self._scheduler.stop()
        if self.current is not None:
            await self.current.aclose()

    async def _load_off_loop(self) -> tuple[Config, WebConfig | None]:
        """Both files read and parsed on a worker thread, within ``LOAD_LIMIT_SECONDS``.

        Polls, scrapes and signals go on meanwhile; the files' size cap bounds the thread's
        work, so one given up on ends soon after.
        """

        def load_both() -> tuple[Config, WebConfig | None]:
            return self._load(), self._load_web() if self._load_web is not None else None

        try:
            return await asyncio.wait_for(asyncio.to_thread(load_both), LOAD_LIMIT_SECONDS)
        except TimeoutError:
            raise ConfigError(
                "config", f"a configuration read and checked within {LOAD_LIMIT_SECONDS:g}s"
            ) from None

    async def reload(self) -> str | None:
        """Load the configuration again; None on success, else the one-line error."""
        async with self._lock:
            try:
                config, web = await self._load_off_loop()
            except ConfigError as error:
                self.status.failed()
                log.error(
                    "reloading the configuration failed: keeping the running one",
                    extra={"error": str(error)},
                )
                return str(error)
            self.status.succeeded()
            if web is not None and self._apply_web is not None:
                self._apply_web(web)
            if self.current is not None and config == self.current.config:
                log.info("configuration reloaded: unchanged")
                return None
            # Polls stop first; the new parts are built from the stopped ones (what they take
            # over is not closed); only then is the rest of the old exporter closed.
            running = self.current
            if self._scheduler is not None:
                await self._scheduler.stop()
            replacement = self._build(config)
            if running is not None:
                await running.aclose()
            self.start(replacement)
            log.info("configuration reloaded", extra={"targets": len(config.targets)})
            return None
