"""Three shards of one configuration, scraped by one real Prometheus, poll and publish exactly
what one unsharded exporter does, each target by one shard only.

Nine targets, each its own simulator (so each simulator's request count is one target's), with
a poll interval of an hour: every exporter polls each of its targets once, at its start, and the
counts stand still while they are compared. Three processes run ``--shard 0..2 --total-shards
3``, a fourth runs unsharded on the same file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from exporter.config import Credentials, PollSettings, Target
from exporter.demo.simulator import ApiSimulator
from exporter.polling.schedule.sharding import shard_of
from tests.support.exporter_process import ExporterProcess, stop_process
from tests.support.exposition import samples
from tests.support.jobs import job_record
from tests.support.prometheus_process import Prometheus, result_of, wait_for
from tests.support.tools import ROOT

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
KEY = Credentials("LTAIsharded", "sharded-secret-value")
TARGETS = 9
SHARDS = 3
NOW = int(time.time())


def jobs_of(n: int) -> list[dict]:
    """Target n: n + 1 jobs in its own project, over two quotas, so every total differs."""
    return [
        job_record(
            f"t{n}-j{j}",
            quota=f"q{j % 2}",
            project=f"p{n}",
            cu=(j + 1) / 64,
            submitted=NOW - 600 + j,
            running=NOW - 500,
        )
        for j in range(n + 1)
    ]


@dataclass
class Fleet:
    """The simulators (one per target), the three shards, the unsharded one, Prometheus."""

    simulators: list[ApiSimulator]
    shards: list[ExporterProcess]
    unsharded: ExporterProcess
    prometheus: Prometheus


def config_text(simulators: list[ApiSimulator]) -> str:
    lines = [
        "poll: {interval: 1h, timeout: 5s, window: 12h}",
        "quota_poll: {quotas: false, usage: false}",
        "targets:",
    ]
    lines += [
        f"  - {{region: cn-hangzhou, endpoint: '{sim.url}', labels: {{account: a{n}}}, "
        f"credentials: {{access_key_id: {KEY.access_key_id}, "
        f"access_key_secret: {KEY.access_key_secret}}}}}"
        for n, sim in enumerate(simulators)
    ]
    return "\n".join(lines) + "\n"


def owner(simulator: ApiSimulator, n: int) -> int:
    """The shard that must poll target n: the hash of its identity, as the exporter takes it."""
    target = Target(
        region="cn-hangzhou",
        endpoint=simulator.url,
        credentials=KEY,
        labels=(("account", f"a{n}"),),
        poll=PollSettings(),
    )
    return shard_of(target, SHARDS)


def started_simulators() -> list[ApiSimulator]:
    """One simulator per target, each serving its own jobs."""
    credentials = {KEY.access_key_id: (KEY.access_key_secret, None)}
    return [ApiSimulator(jobs_of(n), credentials=credentials).start() for n in range(TARGETS)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("sharded")
    simulators = started_simulators()
    # A target's endpoint (a port the kernel picks) is part of its identity, so with 9 targets
    # one shard gets none about one run in 13; new ports give every shard targets of its own.
    for _ in range(20):
        if len({owner(sim, n) for n, sim in enumerate(simulators)}) == SHARDS:
            break
        for simulator in simulators:
            simulator.stop()
        simulators = started_simulators()
    config = workdir / "config.yaml"
    config.write_text(config_text(simulators), encoding="utf-8")
    shards = [
        ExporterProcess("--config", str(config), "--shard", str(n), "--total-shards", "3")
        for n in range(SHARDS)
    ]
    unsharded = ExporterProcess("--config", str(config))
    prometheus: Prometheus | None = None
    try:
        for process in [*shards, unsharded]:
            process.wait_until("/ready", timeout=60)
        (workdir / "prometheus").mkdir()
        prometheus = Prometheus(
            workdir / "prometheus", [f"127.0.0.1:{shard.port}" for shard in shards], RULES
        )
        yield Fleet(simulators, shards, unsharded, prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        for process in [*shards, unsharded]:
            stop_process(process.process)
        for simulator in simulators:
            simulator.stop()


def by_account(text: str, name: str) -> dict[str, float]:
    """``name``'s samples summed by their ``account`` label."""
    out: dict[str, float] = {}
    for sample in samples(text):
        if sample.name == name and "account" in sample.labels:
            account = sample.labels["account"]
            out[account] = out.get(account, 0.0) + sample.value
    return out


def test_each_target_is_polled_by_its_shard_only(fleet: Fleet) -> None:
    texts = [shard.get("/metrics").text for shard in fleet.shards]
    unsharded = by_account(
        fleet.unsharded.get("/metrics").text, "maxcompute_exporter_api_requests_total"
    )
    owners = [owner(sim, n) for n, sim in enumerate(fleet.simulators)]
    assert sorted(set(owners)) == [0, 1, 2]  # every shard has targets of its own here
    for n, simulator in enumerate(fleet.simulators):
        account = f"a{n}"
        sent = [by_account(text, "maxcompute_exporter_api_requests_total") for text in texts]
        polled_by = [index for index, counts in enumerate(sent) if counts.get(account)]
        assert polled_by == [owners[n]], account
        others = [i for i in range(SHARDS) if i != owners[n]]
        assert all(f'account="{account}"' not in texts[i] for i in others), account
        # What the service saw is what the owner and the unsharded exporter say they sent.
        assert simulator.state.requests == sent[owners[n]][account] + unsharded[account] >= 2
    for index, text in enumerate(texts):
        assert f'maxcompute_exporter_shard_info{{shard="{index}",total_shards="3"}} 1.0' in text


def job_series(prometheus: Prometheus, expr: str) -> dict[tuple, float]:
    result = result_of(prometheus, expr)
    return {
        tuple(
            sorted((k, v) for k, v in s["metric"].items() if k not in ("instance", "job"))
        ): float(s["value"][1])
        for s in result
    }


def test_prometheus_scrapes_every_shard_and_sees_what_one_exporter_publishes(
    fleet: Fleet,
) -> None:
    prometheus = fleet.prometheus

    def scraped() -> bool:
        shards = result_of(prometheus, "maxcompute_exporter_shard_info")
        jobs = result_of(prometheus, "maxcompute_running_jobs")
        return len(shards) == SHARDS and {s["metric"]["account"] for s in jobs} == {
            f"a{n}" for n in range(TARGETS)
        }

    wait_for("every shard scraped", scraped, 60, prometheus.check_running, prometheus.log_tail)
    shard_info = result_of(prometheus, "maxcompute_exporter_shard_info")
    assert sorted(s["metric"]["shard"] for s in shard_info) == ["0", "1", "2"]
    # Each target's series come from exactly one shard (one scrape instance).
    instances = result_of(
        prometheus, "count by (account) (count by (account, instance) (maxcompute_running_jobs))"
    )
    assert {s["metric"]["account"]: s["value"][1] for s in instances} == {
        f"a{n}": "1" for n in range(TARGETS)
    }
    # The shards' series together are one unsharded exporter's, value for value.
    expected: dict[tuple, float] = {}
    for sample in samples(fleet.unsharded.get("/metrics").text):
        if sample.name in ("maxcompute_running_jobs", "maxcompute_running_jobs_cu_ratio"):
            expected[(("__name__", sample.name), *sorted(sample.labels.items()))] = sample.value
    seen = job_series(prometheus, '{__name__=~"maxcompute_running_jobs(_cu_ratio)?"}')
    assert seen == expected
    assert sum(v for k, v in seen.items() if ("__name__", "maxcompute_running_jobs") in k) == sum(
        n + 1 for n in range(TARGETS)
    )
