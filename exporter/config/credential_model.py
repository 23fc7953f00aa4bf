"""What a target signs with, as data: static keys, or the spec of a source to build at start.

A leaf of the config package: the model and the ``credentials:`` block's parser both read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token. Secrets never print."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


Setting = str | int | bool


@dataclass(frozen=True, slots=True)
class CredentialSpec:
    """A credential source to build at start: ``default`` (the SDK's chain) or a config type.

    ``settings`` holds the validated fields (secrets already read from their files); it is
    left out of ``repr`` because it may hold a secret.
    """

    type: str = "default"
    settings: tuple[tuple[str, Setting], ...] = field(default=(), repr=False)

    def get(self, name: str) -> Setting | None:
        return dict(self.settings).get(name)

    @property
    def description(self) -> str:
        """What to call this source in a log line: its type and a non-secret identifier."""
        detail = self.get("role_arn") or self.get("role_name") or self.get("name")
        if self.type == "default":
            return "the default credential chain"
        return f"{self.type} {detail}" if detail else self.type
