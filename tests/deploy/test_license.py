"""The project is licensed: the Apache License 2.0 text, its SPDX id in the metadata and image."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.support.tools import ROOT


def test_license_file_is_the_apache_2_0_text_unchanged() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    # The text Debian's base-files ships as /usr/share/common-licenses/Apache-2.0.
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text
    debian = Path("/usr/share/common-licenses/Apache-2.0")
    if debian.is_file():
        assert text == debian.read_text(encoding="utf-8")


def test_package_metadata_and_image_declare_the_spdx_id() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "Apache-2.0"
    assert project["project"]["license-files"] == ["LICENSE"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in dockerfile
    assert "COPY pyproject.toml README.md LICENSE ./" in dockerfile
