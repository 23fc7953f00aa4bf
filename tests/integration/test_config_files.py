"""Config files that are not text, nest without end or hold no certificate: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.exporter_process import run_exporter

DEEP = "a: " + "[" * 5000 + "1" + "]" * 5000 + "\n"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-files", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"targets:\n  - region: cn-hangzhou\xff\xfe\n", "expected UTF-8 text (byte 32 is not)"),
        (DEEP.encode(), "expected YAML nested less deeply"),
    ],
)
@pytest.mark.parametrize("flag", ["--config", "--web.config.file"])
def test_unreadable_yaml_is_one_line_and_exit_2(
    flag: str, content: bytes, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "file.yml"
    path.write_bytes(content)
    good = tmp_path / "good.yml"
    good.write_text("targets:\n  - region: cn-hangzhou\n")
    args = [flag, str(path)] + (["--config", str(good)] if flag != "--config" else [])
    result = run_exporter(*args, "--check-config", env=ENV)
    prefix = "config error" if flag == "--config" else "web config error"
    assert result.returncode == 2
    assert result.stderr == f"maxcompute-exporter: {prefix}: {path}: {expected}\n"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("client_ca_file", "expected a file of PEM CA certificates"),
        ("cert_file", "expected a PEM certificate matching key_file"),
        ("key_file", "expected a PEM certificate matching key_file"),
    ],
)
def test_a_tls_file_that_is_no_certificate_is_one_line_and_exit_2(
    field: str,
    message: str,
    certificate,
    tmp_path: Path,
) -> None:
    cert, key = certificate
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not a certificate\n")
    files = {"cert_file": cert, "key_file": key, "client_ca_file": cert, field: junk}
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        + "".join(f"  {name}: {value}\n" for name, value in files.items())
        + "  client_auth_type: RequireAndVerifyClientCert\n"
    )
    result = run_exporter("--demo", "--web.config.file", str(web))
    field_name = "cert_file" if field == "key_file" else field
    assert result.returncode == 2
    assert result.stderr == (
        f"maxcompute-exporter: web config error: tls_server_config.{field_name}: "
        + message.format(path=junk)
        + "\n"
    )
