"""Sharding the kube-state-metrics way: ``--shard N --total-shards M``, each replica polling
only the targets whose stable hash of identity falls to it.

A target's identity is what names its series and what it reads: region, endpoint, constant
labels (the account among them), quota and owner filters. Not its credentials: rotating a key
must not move a target to another replica. The hash is SHA-256, the same in every process and
release (Python's ``hash`` is salted per process).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace

from exporter.config import Config, Target
from exporter.config.model import Shard

AUTO = "auto"
# A StatefulSet pod's name: <statefulset>-<ordinal>.
POD_ORDINAL = re.compile(r"^.+-(\d+)$")
POD_NAME_VARIABLES = ("POD_NAME", "HOSTNAME")


def target_identity(target: Target) -> bytes:
    """The bytes a target's shard is hashed from; equal for equal targets in any process."""
    return json.dumps(
        [
            target.region,
            target.endpoint,
            sorted(target.labels),
            sorted(target.quotas),
            sorted(target.owners),
        ],
        ensure_ascii=True,
    ).encode()


def shard_of(target: Target, total: int) -> int:
    """The shard (0 to ``total`` - 1) that polls ``target``."""
    digest = hashlib.sha256(target_identity(target)).digest()
    return int.from_bytes(digest[:8], "big") % total


def sharded(config: Config, shard: Shard) -> Config:
    """``config`` with only the targets ``shard`` polls; series keep the whole file's labels."""
    if shard.total == 1:
        return replace(config, shard=shard)
    return replace(
        config,
        targets=tuple(t for t in config.targets if shard_of(t, shard.total) == shard.index),
        shard=shard,
        fleet_label_names=config.constant_label_names,
    )


def parse_shard(shard: str, total_shards: str, environ: Mapping[str, str]) -> Shard:
    """The shard the flags name; ValueError with one line (naming the flag) if they cannot."""
    if not total_shards.isdigit() or int(total_shards) < 1:
        raise ValueError(
            f"--total-shards: expected a whole number of 1 or more, got {total_shards!r}"
        )
    total = int(total_shards)
    if shard == AUTO:
        index, where = pod_ordinal(environ)
        if index >= total:
            raise ValueError(
                f"--shard=auto: {where} is ordinal {index}, out of range for --total-shards "
                f"{total} (set --total-shards to the StatefulSet's replicas)"
            )
        return Shard(index, total)
    if not shard.isdigit():
        raise ValueError(f"--shard: expected a whole number or 'auto', got {shard!r}")
    if int(shard) >= total:
        raise ValueError(
            f"--shard: {int(shard)} is out of range for --total-shards {total} "
            f"(expected 0 to {total - 1})"
        )
    return Shard(int(shard), total)


def pod_ordinal(environ: Mapping[str, str]) -> tuple[int, str]:
    """The ordinal at the end of this pod's name (POD_NAME, else HOSTNAME), and the name."""
    for variable in POD_NAME_VARIABLES:
        name = environ.get(variable, "")
        if name:
            found = POD_ORDINAL.match(name)
            if found is None:
                raise ValueError(
                    f"--shard=auto: expected {variable} to be a StatefulSet pod's name "
                    f"ending in -N, got {name[:64]!r}"
                )
            return int(found.group(1)), f"pod {name[:64]}"
    raise ValueError("--shard=auto: neither POD_NAME nor HOSTNAME is set (run in a StatefulSet)")
