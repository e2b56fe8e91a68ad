"""The token's user PIN: read from an owner-only file or a systemd credential, never config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from edge_agent.errors import TokenPinError
from edge_agent.private_files import read_private
from edge_agent.signing.settings import Pkcs11Settings

_MAX_PIN_FILE = 4096


def pin_path(settings: Pkcs11Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The file that holds the PIN: ``pin_file`` or ``$CREDENTIALS_DIRECTORY/<credential>``."""
    if settings.pin_file is not None:
        return settings.pin_file.expanduser()
    env = os.environ if environ is None else environ
    folder = env.get("CREDENTIALS_DIRECTORY", "")
    if not folder:
        raise TokenPinError(
            f"pin_credential {settings.pin_credential!r} is set but $CREDENTIALS_DIRECTORY is "
            f"not: run under systemd with LoadCredential={settings.pin_credential}:/path/to/pin "
            "(or set pin_file)",
            module=str(settings.module),
            token=settings.token_label,
        )
    assert settings.pin_credential is not None  # Pkcs11Settings checks one of the two is set
    return Path(folder) / settings.pin_credential


def read_pin(settings: Pkcs11Settings, environ: Mapping[str, str] | None = None) -> str:
    """The user PIN; TokenPinError if the source is missing, not owner-only or empty."""
    path = pin_path(settings, environ)

    def fail(problem: str) -> TokenPinError:
        return TokenPinError(
            f"PIN file {path}: {problem}", module=str(settings.module), token=settings.token_label
        )

    data = read_private(path, _MAX_PIN_FILE, fail, same_owner=True)
    if len(data) > _MAX_PIN_FILE:
        raise fail("implausibly large for a PIN")
    try:
        pin = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    if not pin:
        raise fail("empty")
    return pin
