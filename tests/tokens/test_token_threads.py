"""Two threads of one process using one token at once: the station signs events while the
key switch (a receipt handler's thread) relabels keys. python-pkcs11 initialises modules with
C_Initialize(NULL), so SoftHSM2 takes no locks of its own; without the library's call lock a
search or a signature failed with CKR_GENERAL_ERROR mid-rotation (seen in CI)."""

from __future__ import annotations

import threading

from edge_agent.tokens.keys import create_key, find_key, relabel_key
from edge_agent.tokens.library import TokenSession
from edge_agent.tokens.signer import TokenSigner, check_raw_signature
from tests.support.tokens import Token

RELABELS = 200


def test_signatures_and_relabels_in_two_threads_never_fail(softhsm: Token) -> None:
    settings = softhsm.settings("station")
    with TokenSession(settings, rw=True) as tk:
        create_key(tk)
        create_key(tk, label="station.next")
    errors: list[BaseException] = []
    done = threading.Event()

    def relabel() -> None:
        # station.next <-> station.spare, back and forth, through short sessions
        try:
            for i in range(RELABELS):
                src, dst = ("station.next", "station.spare")[:: 1 if i % 2 == 0 else -1]
                with TokenSession(settings, rw=True) as tk:
                    relabel_key(tk, find_key(tk, src), dst)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    signatures = 0
    with TokenSigner(settings) as signer:
        thread = threading.Thread(target=relabel)
        thread.start()
        try:
            while not done.is_set() or signatures == 0:
                raw = signer.sign(b"event %d" % signatures)
                assert check_raw_signature(signer.key.public_key, raw, b"event %d" % signatures)
                signatures += 1
        finally:
            thread.join()
    assert not errors, errors
    with TokenSession(settings) as tk:  # an even number of moves: back where it started
        assert find_key(tk, "station.next").public_key is not None
