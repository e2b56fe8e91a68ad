"""Config section of event signing: a key file folder, or a key inside a PKCS#11 token."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.dataform import bounded, pattern

# systemd credential names: no slashes, not "." or ".." (systemd.exec, LoadCredential=)
_CREDENTIAL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]{0,254}")


@dataclass(frozen=True, kw_only=True)
class Pkcs11Settings:
    """A P-256 key inside a PKCS#11 token; the PIN comes from a file or systemd credential.

    The same shape serves ``[signing.pkcs11]`` (the station key), ``[gateway.receipt_pkcs11]``
    and ``[ingest.receipt_pkcs11]``. The PIN itself never sits in the config file.
    """

    module: Path  # the token's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
    token_label: str = pattern(r"[^\x00-\x1f]{1,32}")  # CKA_LABEL of the token (32 bytes max)
    key_label: str = pattern(r"[^\x00-\x1f]{1,128}", default="edge-agent-station")
    pin_file: Path | None = None  # owner-only (0600 or 0400) file holding the user PIN
    pin_credential: str | None = None  # systemd credential: $CREDENTIALS_DIRECTORY/<name>
    # Refused when set: a PIN in the config file would be copied with it (backups, tickets).
    pin: str | None = None

    def __post_init__(self) -> None:
        if self.pin is not None:
            raise ValueError(
                "pin: the PIN never goes in the config file; put it in an owner-only file "
                "(pin_file) or a systemd credential (pin_credential, LoadCredential=)"
            )
        if not self.module.is_absolute():
            raise ValueError(f"module: must be an absolute path, got {str(self.module)!r}")
        if (self.pin_file is None) == (self.pin_credential is None):
            raise ValueError("set exactly one of pin_file and pin_credential")
        if self.pin_file is not None and not self.pin_file.expanduser().is_absolute():
            raise ValueError(f"pin_file: must be an absolute path, got {str(self.pin_file)!r}")
        if self.pin_credential is not None and (
            not _CREDENTIAL.fullmatch(self.pin_credential) or self.pin_credential in {".", ".."}
        ):
            raise ValueError(
                f"pin_credential: {self.pin_credential!r} is not a systemd credential name"
            )

    def describe(self) -> str:
        """Where the key lives, for logs and messages: token/label (module)."""
        return f"token {self.token_label!r} key {self.key_label!r} ({self.module})"


@dataclass(frozen=True, kw_only=True)
class SigningSettings:
    """Where the station key lives and which COSE algorithm ids to emit."""

    key_dir: Path = field(
        default_factory=lambda: Path("~/.local/share/edge-agent/keys").expanduser()
    )
    alg: Literal["ed25519", "p256"] = "ed25519"
    # Emit EdDSA (-8) / ES256 (-7) instead of RFC 9864's Ed25519 (-19) / ESP256 (-9).
    legacy_alg_ids: bool = False
    # Set: the station key is this token key (always P-256) and no key file is read, ever.
    pkcs11: Pkcs11Settings | None = None
    # `keys rotate`: how long the gateway keeps accepting the old key after it accepted the
    # rotation (events signed just before it, events re-sent from the outbox)
    rotation_overlap_s: int = bounded(0, 366 * 86400, default=7 * 86400)
