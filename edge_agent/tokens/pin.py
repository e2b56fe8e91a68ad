"""The token's user PIN: read from an owner-only file or a systemd credential, never config."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from edge_agent.errors import TokenPinError
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

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise fail("not found") from None
    except OSError as exc:
        raise fail(f"cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail("not a regular file")
        if st.st_mode & 0o077:
            raise fail(
                f"has mode {stat.S_IMODE(st.st_mode):04o}; it must be readable by its owner "
                f"only (chmod 600 {path})"
            )
        if st.st_uid != os.geteuid():
            raise fail(f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})")
        data = os.read(fd, _MAX_PIN_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_PIN_FILE:
        raise fail("implausibly large for a PIN")
    try:
        pin = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    if not pin:
        raise fail("empty")
    return pin
