"""Command line: parse flags, load the configuration, wire the parts together and run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from exporter import __version__
from exporter.config import (
    Config,
    ConfigError,
    Credentials,
    MetricsSettings,
    PollSettings,
    Target,
    load_config,
)
from exporter.config.advice import config_warnings
from exporter.config.effective import render_effective_settings
from exporter.demo.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, ApiSimulator
from exporter.demo.workload import DemoFaults, phased_workload
from exporter.logs import LEVELS, setup_logging
from exporter.metrics.collector import ExporterMetrics, MetricsRenderer
from exporter.polling.poller import TargetPoller
from exporter.polling.snapshot import SnapshotStore
from exporter.reload import ConfigReloader
from exporter.web.httpserver import ServerLimits
from exporter.web.server import ExporterHTTPServer, parse_listen_address
from exporter.web.status_page import StatusPage
from exporter.web.webconfig import WebConfig, load_web_config

log = logging.getLogger("exporter")

DEFAULT_LISTEN_ADDRESS = ":10181"
DEFAULT_MAX_CONNECTIONS = ServerLimits().max_connections
EXIT_USAGE = 2
RELOAD_TIMEOUT_SECONDS = 60.0


def connection_limit(text: str) -> int:
    """``--web.max-connections``: a whole number from 1 to 10000."""
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 10000, got {text!r}")
    return int(text)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        hint = self.suggestion(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} ({hint}see --help)\n")

    def suggestion(self, message: str) -> str:
        """'did you mean --x? ' for the first unrecognized flag close to a real one."""
        if not message.startswith("unrecognized arguments: "):
            return ""
        known = [flag for action in self._actions for flag in action.option_strings]
        for word in message.removeprefix("unrecognized arguments: ").split():
            flag = word.split("=", 1)[0]
            close = difflib.get_close_matches(flag, known, n=1) if flag.startswith("--") else []
            if close:
                return f"did you mean {close[0]}? "
        return ""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="maxcompute-exporter",
        # A misspelt flag such as --web.listen-addres must not pass as an abbreviation.
        allow_abbrev=False,
        description="Prometheus exporter for Alibaba Cloud MaxCompute running jobs.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file")
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=DEFAULT_LISTEN_ADDRESS,
        help=f"address to serve metrics on (default {DEFAULT_LISTEN_ADDRESS})",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        help="path under which to expose metrics (default /metrics)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="exporter-toolkit web configuration: TLS and basic auth",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=connection_limit,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"most HTTP connections open at once (default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--log.level", dest="log_level", default="info", choices=sorted(LEVELS), help="log level"
    )
    parser.add_argument(
        "--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json")
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--once", action="store_true", help="poll every target once, print the metrics, exit"
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against a bundled API simulator with generated jobs (no cloud account needed)",
    )
    return parser


def demo_config(endpoint: str) -> Config:
    target = Target(
        region="cn-hangzhou",
        endpoint=endpoint,
        credentials=Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
    )
    # The per-job view is on so that the demo's alerts and dashboard name the jobs.
    return Config(
        targets=(target,),
        poll=PollSettings(interval=15.0, window=86400.0),
        metrics=MetricsSettings(top_jobs=5),
    )


class Exporter:
    """The running parts for one configuration: store, metrics, one poller per target."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = SnapshotStore(config.targets)
        self.metrics = ExporterMetrics(
            self.store,
            config.targets,
            config.constant_label_names,
            config.poll.interval,
            max_staleness=config.poll.effective_max_staleness,
            top_jobs=config.metrics.top_jobs,
        )
        self.renderer = MetricsRenderer(self.store, self.metrics)
        self.pollers = [
            TargetPoller(
                target, config.poll, self.store, self.metrics, top_jobs=config.metrics.top_jobs
            )
            for target in config.targets
        ]

    async def aclose(self) -> None:
        for poller in self.pollers:
            await poller.aclose()


async def run_once(config: Config) -> int:
    exporter = Exporter(config)
    try:
        results = await asyncio.gather(*(poller.poll() for poller in exporter.pollers))
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

    def reload_on_sighup() -> None:
        log.info("SIGHUP: reloading the configuration")
        task = loop.create_task(reloader.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_on_sighup)
    # A reload that hangs (an HTTP client that will not close) fails the request, not a worker.
    server.reload = lambda: asyncio.run_coroutine_threadsafe(reloader.reload(), loop).result(
        timeout=RELOAD_TIMEOUT_SECONDS
    )
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
    def serve_exporter(exporter: Exporter) -> None:
        server.exposition = exporter.renderer
        server.is_ready = lambda: exporter.store.ready
        server.report = StatusPage(exporter.store, exporter.config.poll.interval, telemetry_path)

    def load_web() -> WebConfig:
        try:
            return load_web_config(web_config_file or "")
        except ConfigError as error:
            error.args = (f"web config: {error}",)
            raise

    return ConfigReloader(
        load,
        Exporter,
        lambda e: e.metrics.self_registry,
        serve_exporter,
        load_web=load_web if web_config_file else None,
        apply_web=server.use_web_config,
    )


def config_source(
    args: argparse.Namespace,
) -> tuple[Callable[[], Config], ApiSimulator | None, DemoFaults | None]:
    """What reads the configuration, at start and at each reload; the demo's parts if any."""
    if args.demo:
        if args.config:
            fail(EXIT_USAGE, "--demo: runs its own simulator and configuration; drop --config")
        # The demo's phases (a saturating quota, problem jobs, API faults) count from now.
        started = time.time()
        simulator = ApiSimulator(phased_workload(started)).start()
        demo_faults = DemoFaults(simulator, started).start()
        url = simulator.url
        log.info("demo mode: polling the bundled simulator", extra={"endpoint": url})
        # A reload in demo mode reads the same demo configuration: nothing changes.
        return (lambda: demo_config(url)), simulator, demo_faults
    if not args.config:
        fail(EXIT_USAGE, "--config: expected a YAML file (or --demo to try the exporter)")
    path = args.config
    return (lambda: load_config(path)), None, None


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"maxcompute-exporter {__version__}")
        sys.exit(0)
    setup_logging(args.log_level, args.log_format)
    if not args.telemetry_path.startswith("/") or args.telemetry_path in (
        "/",
        "/healthz",
        "/ready",
        "/-/reload",
    ):
        fail(EXIT_USAGE, "--web.telemetry-path: expected a path like /metrics")
    try:
        listen = parse_listen_address(args.listen_address)
    except ValueError as error:
        fail(EXIT_USAGE, str(error))

    web_config = WebConfig()
    if args.web_config_file:
        try:
            web_config = load_web_config(args.web_config_file)
        except ConfigError as error:
            fail(EXIT_USAGE, f"web config error: {error}")

    load, simulator, demo_faults = config_source(args)
    try:
        config = load()
    except ConfigError as error:
        fail(EXIT_USAGE, f"config error: {error}")
    for warning in config_warnings(config):
        log.warning(warning)
    if args.check_config:
        print(f"configuration OK: {len(config.targets)} target(s)")
        print(render_effective_settings(config), end="")
        sys.exit(0)
    if args.once:
        sys.exit(asyncio.run(run_once(config)))

    exporter = Exporter(config)
    try:
        server = ExporterHTTPServer(
            listen,
            exporter.renderer,
            lambda: exporter.store.ready,
            args.telemetry_path,
            web_config,
            limits=ServerLimits(max_connections=args.max_connections),
            report=StatusPage(exporter.store, config.poll.interval, args.telemetry_path),
        )
    except OSError as error:
        fail(1, f"--web.listen-address: cannot listen on {args.listen_address}: {error.strerror}")
    server.serve_in_thread()
    log.info(
        "listening",
        extra={
            "address": args.listen_address,
            "tls": web_config.tls is not None,
            "basic_auth": bool(web_config.users),
            "telemetry_path": args.telemetry_path,
            "targets": ",".join(t.name for t in config.targets),
            "interval_seconds": config.poll.interval,
            "max_connections": args.max_connections,
        },
    )
    reloader = new_reloader(server, load, args.web_config_file, args.telemetry_path)
    code = asyncio.run(serve(reloader, exporter, server))
    if demo_faults is not None:
        demo_faults.stop()
    if simulator is not None:
        with contextlib.suppress(Exception):
            simulator.stop()
    sys.exit(code)


def fail(code: int, message: str) -> NoReturn:
    print(f"maxcompute-exporter: {message}", file=sys.stderr)
    sys.exit(code)
