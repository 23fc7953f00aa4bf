"""The configuration: immutable settings every layer reads, loaded and checked at the bottom.

The names below are the package's public face (``from exporter.config import Config``); inside
the package, modules import one another directly.
"""

from exporter.config.credential_model import Credentials
from exporter.config.loading import load_config, parse_config, read_yaml
from exporter.config.metrics_block import MAX_TOP_JOBS
from exporter.config.model import (
    Config,
    MetricsSettings,
    PollSettings,
    QuotaPollSettings,
    Target,
)
from exporter.config.values import (
    DURATION_EXPECTED,
    LABEL_NAME,
    RESERVED_LABELS,
    ConfigError,
    check_keys,
    describe,
    format_duration,
    non_empty_string,
    parse_duration,
)

__all__ = [
    "DURATION_EXPECTED",
    "LABEL_NAME",
    "MAX_TOP_JOBS",
    "RESERVED_LABELS",
    "Config",
    "ConfigError",
    "Credentials",
    "MetricsSettings",
    "PollSettings",
    "QuotaPollSettings",
    "Target",
    "check_keys",
    "describe",
    "format_duration",
    "load_config",
    "non_empty_string",
    "parse_config",
    "parse_duration",
    "read_yaml",
]
