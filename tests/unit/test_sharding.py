"""Sharding: which targets a replica polls, from its flags, and the same answer in every process."""

from __future__ import annotations

import pytest

from exporter.config import Config, Credentials, PollSettings
from exporter.config.model import Shard
from exporter.polling.schedule.sharding import parse_shard, shard_of, sharded, target_identity
from tests.support.exporter_process import run_exporter
from tests.support.jobs import make_target


def fleet(count: int) -> Config:
    targets = tuple(
        make_target(f"https://h{n % 7}.example", labels=(("account", f"a{n:03d}"),))
        for n in range(count)
    )
    return Config(targets=targets, poll=PollSettings())


def test_a_targets_shard_is_fixed_by_its_identity_alone() -> None:
    target = make_target(labels=(("account", "prod"),), quotas=("etl",), owners=("RAM$x:y",))
    assert target_identity(target) == (
        b'["cn-hangzhou", "https://maxcompute.cn-hangzhou.aliyuncs.com", [["account", "prod"]], '
        b'["etl"], ["RAM$x:y"]]'
    )
    # sha256 of those bytes, first 8 bytes big-endian, modulo the shard count: in any process.
    assert [shard_of(target, total) for total in (1, 2, 3, 5, 7)] == [0, 0, 2, 3, 2]
    rotated = make_target(
        labels=(("account", "prod"),),
        quotas=("etl",),
        owners=("RAM$x:y",),
        credentials=Credentials("LTAIanother", "another-secret"),
    )
    assert shard_of(rotated, 7) == 2  # a new key does not move the target


def test_every_target_is_polled_by_exactly_one_shard_and_keeps_the_fleets_label_names() -> None:
    config = fleet(300)
    shards = [sharded(config, Shard(index, 3)) for index in range(3)]
    polled = [target for shard in shards for target in shard.targets]
    assert sorted(polled, key=repr) == sorted(config.targets, key=repr)
    assert [len(shard.targets) for shard in shards] == [94, 102, 104]
    assert all(s.constant_label_names == ("account",) for s in shards)
    assert all(s.shard.total == 3 for s in shards)
    assert sharded(config, Shard()) == Config(config.targets, config.poll, shard=Shard())


def test_a_shard_of_no_target_keeps_the_label_names_of_the_file() -> None:
    config = fleet(1)
    (empty,) = [i for i in range(2) if shard_of(config.targets[0], 2) != i]
    assert sharded(config, Shard(empty, 2)).targets == ()
    assert sharded(config, Shard(empty, 2)).constant_label_names == ("account",)


@pytest.mark.parametrize(
    ("shard", "total", "environ", "expected"),
    [
        ("0", "1", {}, Shard(0, 1)),
        ("2", "3", {}, Shard(2, 3)),
        ("auto", "3", {"POD_NAME": "maxcompute-exporter-2", "HOSTNAME": "x-0"}, Shard(2, 3)),
        ("auto", "4", {"HOSTNAME": "maxcompute-exporter-b-3"}, Shard(3, 4)),
    ],
)
def test_the_shard_from_the_flags(shard, total, environ, expected) -> None:
    assert parse_shard(shard, total, environ) == expected


@pytest.mark.parametrize(
    ("shard", "total", "environ", "message"),
    [
        ("3", "3", {}, "--shard: 3 is out of range for --total-shards 3 (expected 0 to 2)"),
        ("-1", "3", {}, "--shard: expected a whole number or 'auto', got '-1'"),
        ("0", "0", {}, "--total-shards: expected a whole number of 1 or more, got '0'"),
        ("0", "x", {}, "--total-shards: expected a whole number of 1 or more, got 'x'"),
        (
            "auto",
            "3",
            {"POD_NAME": "maxcompute-exporter-3"},
            "--shard=auto: pod maxcompute-exporter-3 is ordinal 3, out of range for "
            "--total-shards 3 (set --total-shards to the StatefulSet's replicas)",
        ),
        (
            "auto",
            "3",
            {"HOSTNAME": "laptop"},
            "--shard=auto: expected HOSTNAME to be a StatefulSet pod's name ending in -N, "
            "got 'laptop'",
        ),
        (
            "auto",
            "3",
            {},
            "--shard=auto: neither POD_NAME nor HOSTNAME is set (run in a StatefulSet)",
        ),
    ],
)
def test_a_shard_the_flags_cannot_name_is_one_line(shard, total, environ, message) -> None:
    with pytest.raises(ValueError) as caught:
        parse_shard(shard, total, environ)
    assert str(caught.value) == message


def test_an_out_of_range_shard_exits_2_with_one_line(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("targets:\n  - region: cn-hangzhou\n", encoding="utf-8")
    done = run_exporter("--config", str(config), "--shard", "3", "--total-shards", "3")
    assert done.returncode == 2
    assert done.stderr == (
        "maxcompute-exporter: --shard: 3 is out of range for --total-shards 3 (expected 0 to 2)\n"
    )
    assert done.stdout == ""


def test_check_config_names_the_shard_and_auto_reads_the_pod_name(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "targets:\n"
        + "".join(
            f"  - {{region: cn-hangzhou, quotas: [q{n}], labels: {{account: a{n}}}}}\n"
            for n in range(9)
        ),
        encoding="utf-8",
    )
    owned = sum(
        1
        for n in range(9)
        if shard_of(make_target(quotas=(f"q{n}",), labels=(("account", f"a{n}"),)), 3) == 1
    )
    done = run_exporter(
        "--config",
        str(config),
        "--check-config",
        "--shard=auto",
        "--total-shards",
        "3",
        env={"POD_NAME": "maxcompute-exporter-1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"configuration OK: {owned} target(s) in shard 1 of 3"
