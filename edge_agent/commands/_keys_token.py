"""``keys init|show --pkcs11``: the station, gateway or ingest key inside a PKCS#11 token.

Flags override the config section (``[signing.pkcs11]``, ``[gateway.receipt_pkcs11]`` or
``[ingest.receipt_pkcs11]``, chosen with ``--for``); the PIN always comes from a file or a
systemd credential, never from a flag or the config file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.dataform import from_plain
from edge_agent.errors import ConfigError, TokenError
from edge_agent.signing.algorithms import alg_name
from edge_agent.signing.keys import public_key_pem
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.signing.signer import key_id
from edge_agent.tokens.keys import create_key
from edge_agent.tokens.library import TokenSession
from edge_agent.tokens.signer import TokenSigner

log = logging.getLogger(__name__)

_FLAGS = ("module", "token_label", "key_label", "pin_file", "pin_credential")


def add_token_flags(parser: argparse.ArgumentParser) -> None:
    """The --pkcs11 flag family."""
    group = parser.add_argument_group("key inside a PKCS#11 token")
    group.add_argument(
        "--pkcs11", action="store_true", help="use the token key (default when the config sets one)"
    )
    group.add_argument(
        "--for",
        dest="key_for",
        choices=["station", "gateway", "ingest"],
        default="station",
        help="whose config section gives the defaults (signing.pkcs11, gateway.receipt_pkcs11, "
        "ingest.receipt_pkcs11)",
    )
    group.add_argument("--module", type=Path, default=None, help="PKCS#11 module (.so) path")
    group.add_argument("--token-label", default=None, help="label of the token")
    group.add_argument("--key-label", default=None, help="label of the key in the token")
    group.add_argument("--pin-file", type=Path, default=None, help="owner-only file with the PIN")
    group.add_argument("--pin-credential", default=None, help="systemd credential name of the PIN")


def _configured(config: AgentConfig, key_for: str) -> Pkcs11Settings | None:
    if key_for == "gateway":
        return config.gateway.receipt_pkcs11
    if key_for == "ingest":
        return config.ingest.receipt_pkcs11
    return config.signing.pkcs11


def token_settings(args: argparse.Namespace, config: AgentConfig) -> Pkcs11Settings | None:
    """The token to use, or None for a key file (no --pkcs11 flag and none configured)."""
    flags = {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not None}
    base = _configured(config, args.key_for)
    if not args.pkcs11 and not flags and (base is None or args.dir is not None):
        return None
    if args.dir is not None:
        raise ConfigError(
            "--dir names a key file folder; a token key takes no --dir", key_path="--dir"
        )
    plain: dict[str, Any] = {}
    if base is not None:
        plain = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    if "pin_file" in flags or "pin_credential" in flags:  # a flag replaces the other source
        plain.pop("pin_file", None)
        plain.pop("pin_credential", None)
    plain.update(flags)
    plain = {k: str(v) if isinstance(v, Path) else v for k, v in plain.items() if v is not None}
    section = {"station": "signing.pkcs11", "gateway": "gateway.receipt_pkcs11"}.get(
        args.key_for, "ingest.receipt_pkcs11"
    )
    return from_plain(Pkcs11Settings, plain, path=section, error=ConfigError)


@contextlib.contextmanager
def module_stderr() -> Iterator[None]:
    """Hold what the module writes to stderr (fd 2) while a one-shot command uses the token.

    tpm2-pkcs11 and the TSS print their own lines for a refused PIN or a missing object. When
    the command fails with a TokenError those lines go to the debug log (``--log-level
    debug``), so the user reads one line; otherwise they are written out unchanged.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except TokenError:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            if failed:
                for line in text.splitlines():
                    log.debug("token module: %s", line)
            elif text:
                sys.stderr.write(text)


def init_token_key(settings: Pkcs11Settings, *, force: bool, pub_out: Path | None) -> int:
    """Create the key in the token, print its kid, write the public key PEM if asked."""
    with module_stderr(), TokenSession(settings, rw=True) as token:
        public = create_key(token, force=force).public_key
    if pub_out is not None:
        pub_out.write_bytes(public_key_pem(public))
        os.chmod(pub_out, 0o644)
    print(key_id(public).hex())
    return 0


def show_token_key(settings: Pkcs11Settings, *, legacy: bool, as_json: bool) -> int:
    """Where the key lives, its kid and alg; proves the PIN and a test signature on the way."""
    with module_stderr(), TokenSigner(settings, legacy_alg_ids=legacy) as signer:
        info: dict[str, Any] = {
            "kid": signer.kid.hex(),
            "alg": alg_name(signer.alg),
            "alg_id": signer.alg,
            "location": "pkcs11",
            "module": str(settings.module),
            "token": settings.token_label,
            "key_label": settings.key_label,
            "private_key": signer.key.provenance,
            "public_key_pem": public_key_pem(signer.public_key).decode(),
        }
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    flags = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in signer.key.provenance.items())
    for name, value in {**info, "private_key": flags}.items():
        if name != "public_key_pem":
            print(f"{name}: {value}")
    print(info["public_key_pem"], end="")
    return 0
