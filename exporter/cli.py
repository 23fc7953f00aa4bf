"""Command line: the flags, their checks, and the exit codes; ``wiring`` runs what they ask.

Exit codes: 0 done, 1 a poll failed (``--once``) or the address cannot be listened on, 2 a
mistake in the flags or the configuration (one line on stderr naming the flag or key).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gc
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from exporter import __version__
from exporter.config import Config, ConfigError, load_config
from exporter.config.advice import config_warnings
from exporter.config.effective import render_effective_settings
from exporter.config.model import Shard
from exporter.logs import LEVELS, setup_logging
from exporter.polling.schedule.sharding import parse_shard, sharded
from exporter.web.httpserver import ServerLimits
from exporter.web.server import parse_listen_address
from exporter.web.webconfig import WebConfig, load_web_config
from exporter.wiring import Exporter, ServeOptions, open_server, run_once, run_server

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter")

DEFAULT_LISTEN_ADDRESS = ":10181"
DEFAULT_MAX_CONNECTIONS = ServerLimits().max_connections
EXIT_USAGE = 2
# How long a thread may hold the interpreter while another waits (CPython's default: 5 ms).
# Scrapes are answered on threads of their own while polls run on the main one: each step of a
# response waited up to this for the interpreter. At 1 ms a 50-target gzip scrape while the
# interpreter is busy takes 0.40x the time at the median, 0.71x at the p99
# (bench/scrape_during_polls.py).
SWITCH_INTERVAL = 0.001
# The cyclic garbage collector stops every thread while it runs. At CPython's defaults
# (700, 10, 10) a full collection of a 50-target fleet's heap (170-380 ms) ran about every 1.5 s
# while polls ran, finding next to nothing: each poll's snapshot and tracked jobs live a poll
# long, and such survivors, not garbage, trigger it. The exporter's data is acyclic (the API
# answers' one cycle is broken in ``api.transport.client``), so collecting rarely costs little
# memory (bench/fleet.py, bench/README.md).
GC_THRESHOLDS = (50_000, 20, 20)
# Paths the server answers itself: the telemetry path may not take one of them.
RESERVED_PATHS = ("/", "/healthz", "/ready", "/-/reload")


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
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="reload the configuration on POST /-/reload (else 403; SIGHUP always reloads)",
    )
    add_run_flags(parser)
    add_shard_flags(parser)
    return parser


def add_shard_flags(parser: argparse.ArgumentParser) -> None:
    """--shard and --total-shards, named and meant as kube-state-metrics's."""
    parser.add_argument(
        "--shard",
        default="0",
        metavar="N|auto",
        help="poll only the targets whose hash falls to shard N of --total-shards (default 0); "
        "auto: N is the ordinal ending the pod name (POD_NAME, else HOSTNAME), as in a "
        "StatefulSet",
    )
    parser.add_argument(
        "--total-shards",
        dest="total_shards",
        default="1",
        metavar="M",
        help="how many shards the targets are spread over (default 1: not sharded)",
    )


def shard_or_exit(args: argparse.Namespace) -> Shard:
    """The shard the flags name; a bad one exits 2 with its one line."""
    try:
        return parse_shard(args.shard, args.total_shards, os.environ)
    except ValueError as error:
        fail(EXIT_USAGE, str(error))


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Logging, and what to do instead of serving: --version, --once, --check-config, --demo."""
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
    parser.add_argument(
        "--demo.speed",
        dest="demo_speed",
        type=float,
        default=1.0,
        help="with --demo: run its phases this many times faster than wall time (tests)",
    )


def config_source(args: argparse.Namespace) -> tuple[Callable[[], Config], Callable[[], None]]:
    """What reads the configuration, at start and at each reload, and what stops the demo."""
    if args.demo:
        if args.config:
            fail(EXIT_USAGE, "--demo: runs its own simulator and configuration; drop --config")
        if not 1.0 <= args.demo_speed <= 100.0:
            fail(EXIT_USAGE, "--demo.speed: expected a number from 1 to 100")
        # Imported here: the simulator and its workload load only for --demo.
        from exporter.demo.launch import start_demo

        demo = start_demo(args.demo_speed)
        log.info(
            "demo mode: polling the bundled simulator",
            extra={"endpoint": demo.simulator.url, "started": demo.started, "speed": demo.speed},
        )
        return demo.config, demo.stop
    if args.demo_speed != 1.0:
        fail(EXIT_USAGE, "--demo.speed: only with --demo")
    if not args.config:
        fail(EXIT_USAGE, "--config: expected a YAML file (or --demo to try the exporter)")
    path = args.config
    return (lambda: load_config(path)), lambda: None


def serve_options(args: argparse.Namespace) -> ServeOptions:
    """The web flags, checked: a bad one exits 2 with its one line."""
    if not args.telemetry_path.startswith("/") or args.telemetry_path in RESERVED_PATHS:
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
    return ServeOptions(
        listen,
        args.listen_address,
        args.telemetry_path,
        web_config,
        args.web_config_file,
        args.max_connections,
        args.enable_lifecycle,
    )


def load_or_exit(load: Callable[[], Config]) -> Config:
    """The configuration, its warnings logged; a mistake in it exits 2."""
    try:
        config = load()
    except ConfigError as error:
        # Conflicts between targets are one line each (exporter.config.fleet).
        fail(EXIT_USAGE, "\n".join(f"config error: {line}" for line in str(error).splitlines()))
    for warning in config_warnings(config):
        log.warning(warning)
    return config


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"maxcompute-exporter {__version__}")
        sys.exit(0)
    setup_logging(args.log_level, args.log_format)
    options = serve_options(args)
    shard = shard_or_exit(args)
    load_all, stop_demo = config_source(args)

    def load() -> Config:
        return sharded(load_all(), shard)

    config = load_or_exit(load)
    if args.check_config:
        sharding = f" in shard {shard.index} of {shard.total}" if shard.total > 1 else ""
        print(f"configuration OK: {len(config.targets)} target(s){sharding}")
        print(render_effective_settings(config), end="")
        sys.exit(0)
    if args.once:
        sys.exit(asyncio.run(run_once(config)))
    exporter = Exporter(config)
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        server = open_server(exporter, options)
    except OSError as error:
        fail(1, f"--web.listen-address: cannot listen on {args.listen_address}: {error.strerror}")
    code = run_server(server, exporter, load, options)
    stop_demo()
    sys.exit(code)


def fail(code: int, message: str) -> NoReturn:
    for line in message.splitlines():
        print(f"maxcompute-exporter: {line}", file=sys.stderr)
    sys.exit(code)
