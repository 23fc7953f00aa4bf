"""A target's `credentials:` block: what each source type gives, and one line per mistake.

No value under `credentials` is ever echoed in an error: any of them may be a secret.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from exporter.config import ConfigError, Credentials, parse_config
from exporter.config.credential_model import CredentialSpec
from tests.support.exporter_process import run_exporter

ROLE = "acs:ram::1000000000000000:role/maxcompute-exporter"
OIDC_PROVIDER = "acs:ram::1000000000000000:oidc-provider/ack-rrsa-c0123"


def credentials_of(block: str, environ: dict | None = None) -> Credentials | CredentialSpec:
    text = f"targets: [{{region: cn-beijing, credentials: {block}}}]"
    return parse_config(yaml.safe_load(text), environ or {}).targets[0].credentials


def error_of(block: str, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        credentials_of(block, environ)
    return str(caught.value)


def test_access_key_and_sts_are_static_keys() -> None:
    assert credentials_of(
        "{type: access_key, access_key_id: LTAIa, access_key_secret: s3cr3t}"
    ) == Credentials("LTAIa", "s3cr3t")
    assert credentials_of(
        "{type: sts, access_key_id: STS.a, access_key_secret: s, security_token: tok}"
    ) == Credentials("STS.a", "s", "tok")


def test_the_untyped_block_of_earlier_versions_still_means_an_access_key() -> None:
    assert credentials_of("{access_key_id: LTAIa, access_key_secret: s}") == Credentials(
        "LTAIa", "s"
    )
    assert credentials_of(
        "{access_key_id: STS.a, access_key_secret: s, security_token: t}"
    ) == Credentials("STS.a", "s", "t")


def test_secrets_may_come_from_files_without_their_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("file-secret\n")
    (tmp_path / "token").write_text("file-token\n")
    block = (
        f"{{type: sts, access_key_id: STS.a, access_key_secret_file: {tmp_path / 'secret'},"
        f" security_token_file: {tmp_path / 'token'}}}"
    )
    assert credentials_of(block) == Credentials("STS.a", "file-secret", "file-token")


def test_each_renewing_source_keeps_its_settings() -> None:
    assert credentials_of(
        f"{{type: ram_role_arn, access_key_id: LTAIa, access_key_secret: s, role_arn: '{ROLE}',"
        " duration: 30m, external_id: ext, sts_endpoint: sts-vpc.cn-beijing.aliyuncs.com}"
    ) == CredentialSpec(
        "ram_role_arn",
        (
            ("access_key_id", "LTAIa"),
            ("access_key_secret", "s"),
            ("duration", 1800),
            ("external_id", "ext"),
            ("role_arn", ROLE),
            ("sts_endpoint", "sts-vpc.cn-beijing.aliyuncs.com"),
        ),
    )
    assert credentials_of(
        f"{{type: oidc_role_arn, role_arn: '{ROLE}', oidc_provider_arn: '{OIDC_PROVIDER}',"
        " oidc_token_file: /var/run/token}"
    ) == CredentialSpec(
        "oidc_role_arn",
        (
            ("oidc_provider_arn", OIDC_PROVIDER),
            ("oidc_token_file", "/var/run/token"),
            ("role_arn", ROLE),
        ),
    )
    assert credentials_of("{type: ecs_ram_role, disable_imds_v1: true}") == CredentialSpec(
        "ecs_ram_role", (("disable_imds_v1", True),)
    )
    assert credentials_of(
        "{type: credentials_uri, uri: 'http://127.0.0.1:8080/credentials'}"
    ) == CredentialSpec("credentials_uri", (("uri", "http://127.0.0.1:8080/credentials"),))
    assert credentials_of("{type: profile, name: prod}") == CredentialSpec(
        "profile", (("name", "prod"),)
    )


def test_a_spec_never_shows_its_settings_and_names_its_source_safely() -> None:
    spec = credentials_of(
        f"{{type: ram_role_arn, access_key_id: LTAIa, access_key_secret: hush, role_arn: '{ROLE}'}}"
    )
    assert "hush" not in repr(spec)
    assert spec.description == f"ram_role_arn {ROLE}"
    assert CredentialSpec().description == "the default credential chain"
    assert CredentialSpec("credentials_uri", (("uri", "http://x/?t=1"),)).description == (
        "credentials_uri"
    )


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            '"LTAI5tSecretLookingValue"',
            "targets[0].credentials: expected a mapping with a type (access_key, sts,"
            " ram_role_arn, oidc_role_arn, ecs_ram_role, credentials_uri, profile)",
        ),
        (
            "[LTAI5tSecretLookingValue]",
            "targets[0].credentials: expected a mapping with a type (access_key, sts,"
            " ram_role_arn, oidc_role_arn, ecs_ram_role, credentials_uri, profile)",
        ),
        (
            "{type: LTAI5tSecretLookingValue}",
            "targets[0].credentials.type: expected one of access_key, sts, ram_role_arn,"
            " oidc_role_arn, ecs_ram_role, credentials_uri, profile",
        ),
        (
            "{role_arn: x}",
            "targets[0].credentials.type: expected one of access_key, sts, ram_role_arn,"
            " oidc_role_arn, ecs_ram_role, credentials_uri, profile",
        ),
        (
            "{type: access_key, access_key_id: LTAIa}",
            "targets[0].credentials.access_key_secret: expected a value (or"
            " access_key_secret_file) for this credential type",
        ),
        (
            "{type: ram_role_arn, access_key_id: LTAIa, access_key_secret: LTAI5tSecret}",
            "targets[0].credentials.role_arn: expected a value for this credential type",
        ),
        (
            "{type: credentials_uri, uri: 'ftp://LTAI5tSecret@host/x'}",
            "targets[0].credentials.uri: expected an http(s) URL",
        ),
        (
            "{type: access_key, access_key_id: LTAIa, access_key_secret: LTAI5tSecret,"
            " access_key_secret_file: /x}",
            "targets[0].credentials.access_key_secret: expected either access_key_secret or"
            " access_key_secret_file, not both",
        ),
        (
            "{type: access_key, access_key_id: LTAIa, access_key_secret: 'LTAI5tSécret'}",
            "targets[0].credentials.access_key_secret: expected printable ASCII characters only",
        ),
        (
            "{type: access_key, access_key_id: 'LTAI5t\u00e9', access_key_secret: s}",
            "targets[0].credentials.access_key_id: expected printable ASCII characters only",
        ),
        (
            "{type: sts, access_key_id: a, access_key_secret: s, security_token: 'LTAI5t\u2603'}",
            "targets[0].credentials.security_token: expected printable ASCII characters only",
        ),
        (
            "{type: access_key, access_key_id: LTAIa, access_key_secret: 12345}",
            "targets[0].credentials.access_key_secret: expected a non-empty string, got a number:"
            " put it in quotes so YAML reads it as text",
        ),
        (
            "{type: access_key, access_key_id: LTAIa, access_key_secret: s, LTAI5tSecret: x}",
            "targets[0].credentials: unknown key (known keys: access_key_id, access_key_secret,"
            " access_key_secret_file, type)",
        ),
        (
            "{type: ecs_ram_role, role_nme: x}",
            "targets[0].credentials.role_nme: unknown key (known keys: disable_imds_v1,"
            " role_name, type)",
        ),
        (
            f"{{type: ram_role_arn, access_key_id: a, access_key_secret: s, role_arn: '{ROLE}',"
            " duration: 5m}",
            "targets[0].credentials.duration: expected a session length from 15m to 12h, got '5m'",
        ),
        (
            "{type: ecs_ram_role, disable_imds_v1: LTAI5tSecret}",
            "targets[0].credentials.disable_imds_v1: expected true or false",
        ),
    ],
)
def test_each_mistake_is_one_line_that_never_echoes_a_value(block: str, message: str) -> None:
    error = error_of(block)
    assert error == message
    assert "LTAI5t" not in error


def test_an_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert error_of(
        f"{{type: access_key, access_key_id: a, access_key_secret_file: {missing}}}"
    ) == ("targets[0].credentials.access_key_secret_file: expected a readable UTF-8 file")


def test_a_non_ascii_key_in_the_environment_is_refused_without_echo() -> None:
    environ = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5t\u00e9",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s",
    }
    assert error_of("null", environ) == (
        "targets[0].credentials (from ALIBABA_CLOUD_ACCESS_KEY_ID): expected printable ASCII"
        " characters only"
    )


def test_check_config_refuses_a_non_ascii_secret_with_one_line_and_status_2(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "targets:\n  - region: cn-hangzhou\n    credentials:\n      type: access_key\n"
        "      access_key_id: LTAIcheck\n      access_key_secret: 'sécret-LTAI5t'\n",
        encoding="utf-8",
    )
    result = run_exporter("--config", str(config), "--check-config")
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: config error: targets[0].credentials.access_key_secret:"
        " expected printable ASCII characters only\n"
    )


def test_check_config_accepts_every_source_without_contacting_any(tmp_path: Path) -> None:
    # Every source points at one listening loopback socket: no connection may arrive.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = tmp_path / "config.yaml"
        # Each its own quota: the same jobs read with other credentials would draw a warning.
        config.write_text(
            "targets:\n"
            "  - {region: cn-hangzhou, labels: {n: '1'}, quotas: [q1]}\n"
            "  - {region: cn-hangzhou, labels: {n: '2'}, quotas: [q2], credentials: {"
            "type: credentials_uri,"
            f" uri: '{url}/credentials'}}}}\n"
            f"  - {{region: cn-hangzhou, labels: {{n: '3'}}, quotas: [q3], credentials: {{"
            "type: ram_role_arn,"
            f" access_key_id: a, access_key_secret: s, role_arn: '{ROLE}',"
            f" sts_endpoint: '{url}'}}}}\n"
            "  - {region: cn-hangzhou, labels: {n: '4'}, quotas: [q4],"
            " credentials: {type: ecs_ram_role}}\n"
            "  - {region: cn-hangzhou, labels: {n: '5'}, quotas: [q5],"
            " credentials: {type: profile}}\n",
            encoding="utf-8",
        )
        result = run_exporter(
            "--config", str(config), "--check-config", env={"ALIBABA_CLOUD_CREDENTIALS_URI": url}
        )
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("configuration OK: 5 target(s)\n")
    assert "access_key_secret: <secret>" in result.stdout  # the ram_role_arn secret, masked


def test_only_what_travels_in_headers_must_be_ascii() -> None:
    assert credentials_of(
        "{type: profile, name: 'équipe', file: '/home/jörg/.aliyun/config.json'}"
    ) == CredentialSpec("profile", (("file", "/home/jörg/.aliyun/config.json"), ("name", "équipe")))
