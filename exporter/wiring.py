"""Wiring: one configuration's running parts (store, metrics, pollers), the server, reloads.

``cli`` decides from the flags what to run; this module assembles it and runs it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from exporter.api.transport.tls import prepare_tls_context
from exporter.api.wire.quota_usage import USAGE_ACTION
from exporter.api.wire.quotas import LIST_QUOTAS_ACTION
from exporter.config import Config, ConfigError, Target
from exporter.metrics.rendering import MetricsRenderer
from exporter.metrics_wiring import exporter_metrics
from exporter.polling.publish.quota_snapshot import QuotaStore
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from exporter.polling.schedule.quota_poller import QuotaPoller
from exporter.polling.schedule.scheduling import ScheduledPoll
from exporter.reload import ConfigReloader
from exporter.reload_carry import ReloadCarry
from exporter.reload_coalescing import CoalescedReloads
from exporter.web.httpserver import ServerLimits
from exporter.web.server import ExporterHTTPServer
from exporter.web.status_page import StatusPage
from exporter.web.webconfig import WebConfig, load_web_config

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter")


class Exporter:
    """Assembles the running parts of one configuration: store, metrics, a poller per target."""

    def __init__(self, config: Config, previous: Exporter | None = None) -> None:
        """``previous``: the running exporter, on a reload. What the new configuration leaves
        unchanged goes on (see ``exporter.reload_carry``): each such target's published state,
        its client and learned rate, its jobs over time."""
        self.config = config
        carry = ReloadCarry(previous.config if previous else None, config)
        self.store = SnapshotStore(config.targets, carry.statuses(previous and previous.store))
        self.quota_store = QuotaStore(
            config.targets, carry.quota_statuses(previous and previous.quota_store)
        )
        last = previous.metrics if previous is not None else None
        self.metrics = exporter_metrics(config, self.store, self.quota_store, last, carry)
        self.renderer = MetricsRenderer(self.store, self.metrics)
        # Targets whose poller (its client) the next exporter took over: not closed here.
        self._handed_over: set[Target] = set()
        # Each target its own poller: its own settings, HTTP client, learned rate and deadline.
        self.pollers = [self._poller(target, previous, carry) for target in config.targets]
        self.quota_pollers = [
            QuotaPoller(
                poller.target,
                poller.client,
                config.quota_poll,
                self.quota_store,
                self.metrics.quota_polls,
                max_quotas=config.metrics.max_quotas_per_target,
            )
            for poller in self.pollers
            if config.quota_poll.enabled
        ]
        self.other_polls = quota_schedule(self.quota_pollers, self.quota_store)

    def _poller(
        self, target: Target, previous: Exporter | None, carry: ReloadCarry
    ) -> TargetPoller:
        config = self.config
        return TargetPoller(
            target,
            config.poll_for(target),
            self.store,
            self.metrics.polls,
            top_jobs=config.metrics.top_jobs,
            run_time_buckets=config.metrics.run_time_buckets,
            max_projects_per_quota=config.metrics.max_projects_per_quota,
            max_quotas=config.metrics.max_quotas_per_target,
            carried=previous.hand_over(target)
            if previous is not None and carry.keeps_client(target)
            else None,
        )

    def first_poll_at(self, target: Target) -> float | None:
        """One interval after ``target``'s last poll ended if a reload kept its state (its
        schedule goes on: a reload does not poll every unchanged target at once); else None."""
        last = self.store.status(target).last_poll
        return None if last is None else last + self.config.poll_for(target).interval

    def hand_over(self, target: Target) -> TargetPoller | None:
        """``target``'s poller, for the next exporter to go on with (then not closed here)."""
        for poller in self.pollers:
            if poller.target == target:
                self._handed_over.add(target)
                return poller
        return None

    async def aclose(self) -> None:
        for poller in self.pollers:
            if poller.target not in self._handed_over:
                await poller.aclose()


def quota_schedule(quota_pollers: list[QuotaPoller], store: QuotaStore) -> list[ScheduledPoll]:
    """Each quota poller's enabled parts, each on its own interval; a part whose state a reload
    kept is next due one interval after its last poll ended, not at once (a reload of one target
    of fifty does not send the other forty-nine's quota requests again)."""
    polls = []
    for poller in quota_pollers:
        settings, name = poller.settings, poller.target.name
        status = store.status(poller.target)
        parts = (
            (settings.quotas, LIST_QUOTAS_ACTION, poller.poll_quotas, settings.quotas_interval),
            (settings.usage, USAGE_ACTION, poller.poll_usage, settings.usage_interval),
        )
        for on, operation, run, interval in parts:
            if on:
                ended = status.part(operation).last_ended
                due = None if ended is None else ended + interval
                polls.append(ScheduledPoll(f"{operation} {name}", run, interval, due))
    return polls


async def run_once(config: Config) -> int:
    """Every target's polls once (the quota poll's too); 1 if a running-jobs poll failed."""
    await prepare_tls_context()  # the targets' one TLS context, built off the loop
    exporter = Exporter(config)
    try:
        results, *_ = await asyncio.gather(
            asyncio.gather(*(poller.poll() for poller in exporter.pollers)),
            *(poll.run() for poll in exporter.other_polls),
        )
    finally:
        await exporter.aclose()
    sys.stdout.write(exporter.renderer.render().decode())
    return 0 if all(results) else 1


async def serve(reloader: ConfigReloader, exporter: Exporter, server: ExporterHTTPServer) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reloads: set[asyncio.Task] = set()
    # SIGHUP and POST /-/reload together: requests that arrive while one waits share it.
    coalesced = CoalescedReloads(reloader.reload)

    def reload_on_sighup() -> None:
        log.info("SIGHUP: reloading the configuration")
        task = loop.create_task(coalesced())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    async def reload_from_web() -> str | None:
        # Awaited on the web server's loop; the reload runs on this one.
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coalesced(), loop))

    loop.add_signal_handler(signal.SIGHUP, reload_on_sighup)
    server.reload = reload_from_web
    reloader.start(exporter)
    await stop.wait()
    log.info("shutting down")
    server.reload = None
    await reloader.stop()
    current = asyncio.current_task()
    in_flight = [task for task in asyncio.all_tasks() if task is not current]
    for task in in_flight:
        task.cancel()
    await asyncio.gather(*in_flight, return_exceptions=True)
    server.shutdown()
    server.server_close()
    return 0


def new_reloader(
    server: ExporterHTTPServer,
    load: Callable[[], Config],
    web_config_file: str | None,
    telemetry_path: str,
) -> ConfigReloader:
    """Each new exporter is built from the running one, so a reload keeps what it leaves
    unchanged (see ``Exporter``)."""

    def serve_exporter(exporter: Exporter) -> None:
        report = StatusPage(exporter.store, exporter.config.poll.interval, telemetry_path)
        server.serve_state(exporter.renderer, lambda: exporter.store.ready, report)

    def load_web() -> WebConfig:
        try:
            return load_web_config(web_config_file or "")
        except ConfigError as error:
            error.args = (f"web config: {error}",)
            raise

    def build(config: Config) -> Exporter:
        running = reloader.current
        return Exporter(config, running if isinstance(running, Exporter) else None)

    reloader = ConfigReloader(
        load,
        build,
        lambda e: e.metrics.self_registry,
        serve_exporter,
        load_web=load_web if web_config_file else None,
        apply_web=server.use_web_config,
    )
    return reloader


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the web flags decided: where and how to serve."""

    listen: tuple[str, int]
    listen_address: str
    telemetry_path: str
    web_config: WebConfig
    web_config_file: str | None
    max_connections: int
    # --web.enable-lifecycle: POST /-/reload reloads (else 403, as Prometheus).
    enable_lifecycle: bool = False


def open_server(exporter: Exporter, options: ServeOptions) -> ExporterHTTPServer:
    """The HTTP server for ``exporter``, listening and serving in its thread (or ``OSError``)."""
    config = exporter.config
    server = ExporterHTTPServer(
        options.listen,
        exporter.renderer,
        lambda: exporter.store.ready,
        options.telemetry_path,
        options.web_config,
        limits=ServerLimits(max_connections=options.max_connections),
        report=StatusPage(exporter.store, config.poll.interval, options.telemetry_path),
        enable_lifecycle=options.enable_lifecycle,
    )
    server.serve_in_thread()
    log.info(
        "listening",
        extra={
            "address": options.listen_address,
            "tls": options.web_config.tls is not None,
            "basic_auth": bool(options.web_config.users),
            "telemetry_path": options.telemetry_path,
            "targets": ",".join(t.name for t in config.targets),
            "shard": f"{config.shard.index} of {config.shard.total}",
            "interval_seconds": config.poll.interval,
            "max_connections": options.max_connections,
            "lifecycle": options.enable_lifecycle,
        },
    )
    return server


def run_server(
    server: ExporterHTTPServer,
    exporter: Exporter,
    load: Callable[[], Config],
    options: ServeOptions,
) -> int:
    """Poll and serve until SIGTERM or SIGINT; the exit status."""
    reloader = new_reloader(server, load, options.web_config_file, options.telemetry_path)
    code = asyncio.run(serve(reloader, exporter, server))
    # Closing the loop gave SIGHUP back its default action (end the process): while the last
    # of the exit runs, it is ignored again.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return code
