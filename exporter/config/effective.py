"""The settings a configuration runs with, defaults filled in and secrets masked.

``--check-config`` prints this so a user sees what will run; the text is valid YAML that
``parse_config`` reads back to the same settings (credentials aside).
"""

from __future__ import annotations

from typing import Any

import yaml

from exporter.config.credential_model import Credentials, CredentialSpec
from exporter.config.model import Config, PollSettings, Target
from exporter.config.uris import MASK, masked_uri
from exporter.config.values import format_duration

KEY_ID_SHOWN = 4  # "LTAI": enough to tell an AccessKey from an STS key, not to use one


# Settings that are URIs: shown as where they point, their userinfo, path and query masked.
URI_SETTINGS = frozenset({"uri", "sts_endpoint"})
# Settings of a credential source that are shown as they are; every other one is masked.
PLAIN_SETTINGS = frozenset(
    {
        "role_arn",
        "role_session_name",
        "duration",
        "sts_endpoint",
        "oidc_provider_arn",
        "oidc_token_file",
        "role_name",
        "disable_imds_v1",
        "name",
        "file",
    }
)


def masked_credentials(credentials: Credentials | CredentialSpec) -> dict[str, Any] | None:
    """The credential block with secrets masked and the key id shortened; None for the chain."""
    if isinstance(credentials, CredentialSpec):
        if credentials.type == "default":
            return None
        shown: dict[str, Any] = {"type": credentials.type}
        for name, value in credentials.settings:
            if name == "access_key_id":
                shown[name] = str(value)[:KEY_ID_SHOWN] + "****"
            elif name in URI_SETTINGS and "://" in str(value):
                shown[name] = masked_uri(str(value))
            else:
                shown[name] = value if name in PLAIN_SETTINGS else MASK
        return shown
    shown = {
        "access_key_id": credentials.access_key_id[:KEY_ID_SHOWN] + "****",
        "access_key_secret": MASK,
    }
    if credentials.security_token:
        shown["security_token"] = MASK
    return shown


def target_settings(target: Target) -> dict[str, Any]:
    """One target as the configuration would spell it; empty lists mean all."""
    settings = {
        "region": target.region,
        "endpoint": masked_uri(target.endpoint),
        "quotas": list(target.quotas),
        "owners": list(target.owners),
        "labels": dict(target.labels),
    }
    credentials = masked_credentials(target.credentials)
    if credentials is not None:  # absent: the default credential chain
        settings["credentials"] = credentials
    if target.poll is not None:  # absent: the top-level poll block
        settings["poll"] = poll_settings(target.poll)
    return settings


def poll_settings(poll: PollSettings) -> dict[str, Any]:
    """The poll block with the derived deadline and staleness written out."""
    return {
        "interval": format_duration(poll.interval),
        "window": format_duration(poll.window),
        "page_concurrency": poll.page_concurrency,
        "timeout": format_duration(poll.timeout),
        "retries": poll.retries,
        "retry_backoff": format_duration(poll.retry_backoff),
        "rate_limit": poll.rate_limit,
        "deadline": format_duration(poll.effective_deadline),
        "max_staleness": format_duration(poll.effective_max_staleness),
    }


def render_effective_settings(config: Config) -> str:
    """The effective configuration as YAML, under a comment line saying what it is."""
    document = {
        "targets": [target_settings(target) for target in config.targets],
        "poll": poll_settings(config.poll),
        "metrics": {
            "top_jobs": config.metrics.top_jobs,
            "max_projects_per_quota": config.metrics.max_projects_per_quota,
            "max_quotas_per_target": config.metrics.max_quotas_per_target,
            "job_changes": config.metrics.job_changes,
            "owner_consumption": config.metrics.owner_consumption,
            "max_owners_per_quota": config.metrics.max_owners_per_quota,
            "counter_retention": format_duration(config.counter_retention),
        },
        "quota_poll": {
            "quotas": config.quota_poll.quotas,
            "quotas_interval": format_duration(config.quota_poll.quotas_interval),
            "usage": config.quota_poll.usage,
            "usage_interval": format_duration(config.quota_poll.usage_interval),
        },
    }
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return "# effective settings (defaults filled in, secrets masked)\n" + body
