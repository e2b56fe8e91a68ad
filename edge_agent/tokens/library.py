"""PKCS#11 modules loaded once per process, tokens found by label, sessions logged in.

A module is initialised (C_Initialize) when its first session opens and finalised when its
last one closes, so the next open reads the module's environment again (SOFTHSM2_CONF,
TPM2_PKCS11_STORE, TPM2_PKCS11_TCTI). Every python-pkcs11 error is translated here into the
TokenError tree with the module, token and key label it concerns.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pkcs11
from pkcs11 import exceptions as p11

from edge_agent.errors import (
    TokenError,
    TokenKeyError,
    TokenModuleError,
    TokenNotFoundError,
    TokenPinError,
)
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.tokens.pin import read_pin

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib  # noqa: N812

_lock = threading.Lock()
# python-pkcs11 calls C_Initialize(NULL): the module is told nothing about threads, so
# SoftHSM2 takes no locks and two threads using two sessions at once (a signature while the
# key switch relabels) fail with CKR_GENERAL_ERROR. Every call into a module therefore runs
# under this lock: a ``with TokenSession(...)`` block holds it throughout, a long-lived
# signer around each signature (``calls``). Taken before ``_lock``, never after it.
calls = threading.RLock()
_libs: dict[str, Pkcs11Lib] = {}
_users: dict[str, int] = {}
# PKCS#11 logs in the application, not one session: every session of a token shares one
# login, and C_Logout in any of them logs all out. So one login session per token, held while
# any TokenSession on it is open; the others open unauthenticated and use that login.
_logins: dict[tuple[str, str], tuple[Any, int]] = {}
# bumped by reset_module: sessions opened before a reset are dead, and their login with them
_generations: dict[str, int] = {}

# errors that mean the token went away or never answered
_GONE = (
    p11.TokenNotPresent,
    p11.DeviceRemoved,
    p11.SlotIDInvalid,
    p11.TokenNotRecognised,
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceError,
)


def context(settings: Pkcs11Settings) -> dict[str, str]:
    """Keyword arguments naming the token for TokenError."""
    return {
        "module": str(settings.module),
        "token": settings.token_label,
        "key_label": settings.key_label,
    }


def translate(exc: Exception, settings: Pkcs11Settings, doing: str) -> TokenError:
    """The TokenError for a python-pkcs11 error raised while ``doing`` something."""
    where = f"token {settings.token_label!r} ({settings.module})"
    kw = context(settings)
    if isinstance(exc, p11.PinIncorrect | p11.PinInvalid | p11.PinLenRange):
        return TokenPinError(f"{where} refused the PIN while {doing}; check the PIN file", **kw)
    if isinstance(exc, p11.PinLocked):
        return TokenPinError(
            f"{where} is locked after too many wrong PINs; unlock it with the SO PIN", **kw
        )
    if isinstance(exc, p11.PinExpired | p11.UserPinNotInitialized):
        return TokenPinError(f"{where} has no usable user PIN ({type(exc).__name__})", **kw)
    if isinstance(exc, _GONE):
        return TokenNotFoundError(f"{where} went away while {doing} ({type(exc).__name__})", **kw)
    if isinstance(exc, p11.NoSuchKey | p11.MultipleObjectsReturned | p11.KeyHandleInvalid):
        return TokenKeyError(f"{where}: key {settings.key_label!r} unusable while {doing}", **kw)
    if isinstance(exc, p11.ObjectHandleInvalid):
        return TokenKeyError(
            f"{where}: key {settings.key_label!r} vanished while {doing} (key deleted, or the "
            "token went away)",
            **kw,
        )
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, p11.GeneralError) and "tpm2" in settings.module.name:
        # what tpm2-pkcs11 answers when the TPM's object slots are full: another process
        # uses the TPM without a resource manager between them
        detail += " (is another process using the TPM? use /dev/tpmrm0 or tpm2-abrmd)"
    return TokenError(f"{where}: {doing} failed: {detail}", **kw)


def _unreachable(settings: Pkcs11Settings, exc: Exception) -> TokenModuleError:
    """The error for a module whose C_Initialize fails (its token or daemon is gone)."""
    detail = f"{type(exc).__name__} {exc}".strip()
    return TokenModuleError(
        f"token {settings.token_label!r} ({settings.module}) is unreachable: the module does "
        f"not initialise ({detail}); is the token plugged in and its daemon running?",
        **context(settings),
    )


def _load(settings: Pkcs11Settings) -> Pkcs11Lib:
    """The module, initialised; the caller holds ``_lock`` and counts itself as a user."""
    path = str(settings.module.expanduser())
    lib = _libs.get(path)
    if lib is None:
        if not Path(path).is_file():
            raise TokenModuleError(
                f"PKCS#11 module not found: {path} (install the token's package, e.g. "
                "softhsm2 or libtpm2-pkcs11-1, or fix signing.pkcs11.module)",
                **context(settings),
            )
        try:
            lib = pkcs11.lib(path)
        except (p11.PKCS11Error, OSError) as exc:
            raise TokenModuleError(
                f"cannot load PKCS#11 module {path}: {exc}", **context(settings)
            ) from None
        _libs[path] = lib
    elif not lib.initialized:
        try:
            lib.initialize()
        except p11.PKCS11Error as exc:
            raise _unreachable(settings, exc) from None
    _users[path] = _users.get(path, 0) + 1
    return lib


def _release(settings: Pkcs11Settings) -> None:
    """One user less; the last one finalises the module (held: ``_lock``)."""
    path = str(settings.module.expanduser())
    _users[path] -= 1
    if _users[path] == 0:
        lib = _libs[path]
        # finalising a module that lost its token has nothing left to release
        with contextlib.suppress(p11.PKCS11Error):
            lib.finalize()


def _find_token(lib: Pkcs11Lib, settings: Pkcs11Settings) -> Any:
    try:
        tokens = [
            slot.get_token()
            for slot in lib.get_slots(token_present=True)
            if slot.get_token().label == settings.token_label
        ]
    except p11.PKCS11Error as exc:
        raise translate(exc, settings, "listing tokens") from None
    if not tokens:
        raise TokenNotFoundError(
            f"no token labelled {settings.token_label!r} in {settings.module} (is it plugged "
            "in and initialised? list tokens: pkcs11-tool --module MODULE --list-token-slots)",
            **context(settings),
        )
    if len(tokens) > 1:
        raise TokenNotFoundError(
            f"{len(tokens)} tokens are labelled {settings.token_label!r} in {settings.module}; "
            "relabel one",
            **context(settings),
        )
    return tokens[0]


def _login(token: Any, settings: Pkcs11Settings, pin: str) -> None:
    """Log in to ``token`` unless a session of this process already did (held: ``_lock``)."""
    key = (str(settings.module.expanduser()), settings.token_label)
    held = _logins.get(key)
    if held is not None:
        _logins[key] = (held[0], held[1] + 1)
        return
    try:
        session = token.open(user_pin=pin)
    except p11.PKCS11Error as exc:
        raise translate(exc, settings, "logging in") from None
    _logins[key] = (session, 1)


def _logout(settings: Pkcs11Settings) -> None:
    """One user of the login less; the last one logs out (held: ``_lock``)."""
    key = (str(settings.module.expanduser()), settings.token_label)
    session, users = _logins[key]
    if users > 1:
        _logins[key] = (session, users - 1)
        return
    del _logins[key]
    with contextlib.suppress(p11.PKCS11Error):  # a token that went away took its login along
        session.close()


def reset_module(settings: Pkcs11Settings, seen: int) -> None:
    """Finalise and initialise the module again (a token that went away is only found again
    after C_Initialize), unless another caller did since generation ``seen``. Every session
    of the module dies with it; their owners open new ones."""
    path = str(settings.module.expanduser())
    with calls, _lock:
        if _generations.get(path, 0) != seen:
            return
        _generations[path] = seen + 1
        for key in [k for k in _logins if k[0] == path]:
            del _logins[key]
        lib = _libs.get(path)
        if lib is None or not _users.get(path):
            return  # nobody holds it: the next open initialises it
        with contextlib.suppress(p11.PKCS11Error):
            lib.finalize()
        try:
            lib.initialize()
        except p11.PKCS11Error as exc:
            raise _unreachable(settings, exc) from None


def generation(settings: Pkcs11Settings) -> int:
    """How many times the module was reset in this process."""
    with _lock:
        return _generations.get(str(settings.module.expanduser()), 0)


class TokenSession:
    """A logged-in session on the configured token; ``close()`` releases the module."""

    def __init__(self, settings: Pkcs11Settings, *, rw: bool = False) -> None:
        self.settings = settings
        pin = read_pin(settings)  # the PIN source fails first: no module is touched
        with calls, _lock:
            lib = _load(settings)
            self.generation = _generations.get(str(settings.module.expanduser()), 0)
            try:
                self.token = _find_token(lib, settings)
                _login(self.token, settings, pin)
                try:
                    self.session: Any = self.token.open(rw=rw)
                except p11.PKCS11Error as exc:
                    _logout(settings)
                    raise translate(exc, settings, "opening a session") from None
            except BaseException:
                _release(settings)
                raise
        self._open = True
        self.module_description = f"{lib.manufacturer_id} {lib.library_description}".strip()

    def close(self) -> None:
        """Log out, close the session, and finalise the module if nobody else uses it."""
        with calls, _lock:
            if not self._open:
                return
            self._open = False
            try:
                # after a reset the handle may number another caller's new session: leave it
                if not self._stale():
                    with contextlib.suppress(p11.PKCS11Error):  # the token took it along
                        self.session.close()
                    _logout(self.settings)  # (a reset dropped the login already)
            finally:
                _release(self.settings)

    def _stale(self) -> bool:
        return self.generation != _generations.get(str(self.settings.module.expanduser()), 0)

    @property
    def stale(self) -> bool:
        """The module was reset since this session opened: it is dead."""
        with _lock:
            return self._stale()

    def __enter__(self) -> TokenSession:
        calls.acquire()  # the block's calls into the module run alone (see ``calls``)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            calls.release()
