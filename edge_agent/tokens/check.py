"""``config check`` for a token section: the module file exists and the PIN source is usable."""

from __future__ import annotations

import os
from collections.abc import Mapping

from edge_agent.errors import ConfigError, TokenPinError
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.tokens.pin import read_pin


def token_findings(
    key_path: str, settings: Pkcs11Settings, environ: Mapping[str, str] | None = None
) -> tuple[list[ConfigError], list[str]]:
    """Problems and warnings of one ``*pkcs11`` section (stat and read calls, no module load).

    A PIN written in the config file itself is refused earlier, when the config loads.
    """
    problems: list[ConfigError] = []
    warnings: list[str] = []
    module = settings.module.expanduser()
    if not module.is_file():
        problems.append(
            ConfigError(
                f"PKCS#11 module not found: {module} (install the token's package, e.g. "
                "softhsm2 or libtpm2-pkcs11-1)",
                key_path=f"{key_path}.module",
            )
        )
    env = os.environ if environ is None else environ
    if settings.pin_credential is not None and not env.get("CREDENTIALS_DIRECTORY"):
        warnings.append(
            f"{key_path}.pin_credential: {settings.pin_credential!r} is only readable under "
            "systemd (LoadCredential=); not checked here"
        )
        return problems, warnings
    try:
        read_pin(settings, env)
    except TokenPinError as exc:
        field = "pin_file" if settings.pin_file is not None else "pin_credential"
        problems.append(ConfigError(str(exc), key_path=f"{key_path}.{field}"))
    return problems, warnings
