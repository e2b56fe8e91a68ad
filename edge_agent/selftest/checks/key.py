"""Signing key check: the station key file exists, is owner-only, parses and matches its
public key; or the token key signs (checks/key_token.py)."""

from __future__ import annotations

import os
import stat

from cryptography.hazmat.primitives import serialization

from edge_agent.selftest.checks.key_token import check_token_key
from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, warned

KEY_FILE = "station.key.pem"
PUB_FILE = "station.pub.pem"


def check_signing_key(ctx: CheckContext) -> Outcome:
    """Station key present, owner-only (0600), ours, parseable, matching the public key.

    A token key (``signing.pkcs11``) is checked in the token instead; no key file is looked at.
    """
    if ctx.config.signing.pkcs11 is not None:
        return check_token_key(ctx.config.signing.pkcs11)
    key_dir = ctx.config.signing.key_dir.expanduser()
    key = key_dir / KEY_FILE
    pub = key_dir / PUB_FILE
    make = f"create it: edge-agent keys init --dir {key_dir} (or restore the station key backup)"
    try:
        st = key.stat()
    except FileNotFoundError:
        return failed(f"{key} missing", make)
    except OSError as exc:
        return failed(f"{key} unreadable: {exc.strerror}", f"fix the permissions of {key_dir}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return failed(
            f"{key} has mode {mode:04o}: readable by others",
            f"chmod 600 {key}; then treat the key as leaked if others could log in",
        )
    if st.st_uid != os.geteuid():
        return failed(
            f"{key} owned by uid {st.st_uid}, not {os.geteuid()}", f"chown $(id -un) {key}"
        )
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        return failed(f"{key} is not an unencrypted PEM private key: {exc}", make)
    if not pub.is_file():
        return failed(f"{pub} missing", f"export it again from {key} (edge-agent keys show)")
    try:
        public = serialization.load_pem_public_key(pub.read_bytes())
    except (ValueError, OSError) as exc:
        return failed(f"{pub} unreadable: {exc}", "re-export the public key from the private key")
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*raw) != public.public_bytes(*raw):
        return failed(
            f"{pub} does not match {key}",
            "re-export the public key; the backend trusts the wrong key",
        )
    dir_mode = stat.S_IMODE(key_dir.stat().st_mode)
    if dir_mode & 0o022:
        return warned(
            f"key ok, but {key_dir} is writable by others ({dir_mode:04o})", f"chmod 700 {key_dir}"
        )
    return passed(f"{key.name} 0600 owner-only, matches {pub.name}")
