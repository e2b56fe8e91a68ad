"""A minimal TPM 2.0 command client for attestation: raw commands over a TCTI, no TSS.

Only the commands ``keys attest`` needs, with password sessions (and one policy session for
the EK). tpm2-tools cannot be used here: tpm2_certify (5.4) takes no qualifying data, and its
context files load a second copy of each object, which fills an emulator without a resource
manager. This client flushes every transient object and session it creates.

TCTI strings: ``swtpm:host=H,port=P`` (raw commands on TCP, as the swtpm TCTI sends them) and
``device:/dev/tpmrm0`` (the kernel's resource manager; the default).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from edge_agent.errors import TpmError
from edge_agent.signing.tpm_structures import RH_ENDORSEMENT, RH_OWNER, Reader, b2

ST_NO_SESSIONS = 0x8001
ST_SESSIONS = 0x8002
RS_PW = 0x40000009
CC_CREATE_PRIMARY = 0x131
CC_ACTIVATE_CREDENTIAL = 0x147
CC_CERTIFY = 0x148
CC_NV_READ = 0x14E
CC_POLICY_SECRET = 0x151
CC_LOAD = 0x157
CC_UNSEAL = 0x15E
CC_FLUSH_CONTEXT = 0x165
CC_NV_READ_PUBLIC = 0x169
CC_READ_PUBLIC = 0x173
CC_START_AUTH_SESSION = 0x176
MAX_RESPONSE = 8192
# the usual causes of the codes a station meets (format-one codes without their handle,
# session or parameter number)
_HINTS = {
    0x902: " (no free object slot: another process holds TPM objects without a resource "
    "manager; use /dev/tpmrm0)",
    0x903: " (no free session slot)",
    0x08E: " (authorisation failed)",
    0x921: " (the TPM is in dictionary-attack lockout)",
    0x149: " (NV index not readable with owner auth)",
    0x08B: " (no such handle: the token's primary key or the EK certificate index is missing)",
}


@dataclass(frozen=True)
class Auth:
    """One command authorisation: a password, or a policy session handle."""

    password: bytes = b""
    session: int = RS_PW

    def marshal(self) -> bytes:
        """TPMS_AUTH_COMMAND (continueSession clear: a policy session ends with the command)."""
        nonce = b"" if self.session == RS_PW else os.urandom(16)
        return struct.pack(">I", self.session) + b2(nonce) + b"\0" + b2(self.password)


class Tpm:
    """One connection to a TPM; ``call`` sends a command and returns the response body."""

    def __init__(self, tcti: str) -> None:
        self.tcti = tcti
        kind, _, conf = tcti.partition(":")
        self._sock: socket.socket | None = None
        self._fd: int | None = None
        try:
            if kind == "swtpm":
                opts = dict(p.split("=", 1) for p in conf.split(",") if "=" in p)
                host, port = opts.get("host", "127.0.0.1"), int(opts.get("port", "2321"))
                self._sock = socket.create_connection((host, port), timeout=60)
            elif kind == "device":
                self._fd = os.open(conf or "/dev/tpmrm0", os.O_RDWR)
            else:
                raise TpmError(f"TCTI {tcti!r}: only swtpm:... and device:... are supported")
        except (OSError, ValueError) as exc:
            raise TpmError(f"cannot reach the TPM at {tcti!r}: {exc}") from None

    def close(self) -> None:
        """Close the connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Tpm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exchange(self, command: bytes) -> bytes:
        try:
            if self._sock is not None:
                self._sock.sendall(command)
                head = self._recv(10)
                size = struct.unpack(">I", head[2:6])[0]
                return head + self._recv(size - 10)
            assert self._fd is not None
            os.write(self._fd, command)
            return os.read(self._fd, MAX_RESPONSE)
        except OSError as exc:
            raise TpmError(f"TPM at {self.tcti!r} went away: {exc}") from None

    def _recv(self, n: int) -> bytes:
        assert self._sock is not None
        out = b""
        while len(out) < n:
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                raise OSError("connection closed")
            out += chunk
        return out

    def call(
        self, cc: int, handles: tuple[int, ...], params: bytes, auths: tuple[Auth, ...] = ()
    ) -> tuple[tuple[int, ...], Reader]:
        """Run one command: (response handles, reader over the response parameters)."""
        body = b"".join(struct.pack(">I", h) for h in handles)
        if auths:
            area = b"".join(a.marshal() for a in auths)
            body += struct.pack(">I", len(area)) + area
        tag = ST_SESSIONS if auths else ST_NO_SESSIONS
        command = struct.pack(">HII", tag, 10 + len(body) + len(params), cc) + body + params
        response = self._exchange(command)
        r = Reader(response)
        rtag, size, rc = r.u16(), r.u32(), r.u32()
        if rc != 0:
            hint = _HINTS.get(rc & 0x0BF if rc & 0x80 else rc, "")
            raise TpmError(f"TPM command 0x{cc:x} failed with rc 0x{rc:x}{hint}", rc=rc)
        if size != len(response):
            raise TpmError(f"TPM response to 0x{cc:x} has a wrong size")
        count = {CC_CREATE_PRIMARY: 1, CC_LOAD: 1, CC_START_AUTH_SESSION: 1}.get(cc, 0)
        out_handles = tuple(r.u32() for _ in range(count))
        if rtag == ST_SESSIONS:
            return out_handles, Reader(r.take(r.u32()))
        return out_handles, Reader(response[r.at :])

    def flush(self, handle: int) -> None:
        """Unload a transient object or end a session."""
        self.call(CC_FLUSH_CONTEXT, (), struct.pack(">I", handle))

    def create_primary(
        self, hierarchy: int, template: bytes, auth: bytes = b""
    ) -> tuple[int, bytes]:
        """(handle, TPMT_PUBLIC) of a primary key made from ``template`` in ``hierarchy``."""
        sensitive = b2(b2(b"") + b2(b""))
        params = sensitive + b2(template) + b2(b"") + struct.pack(">I", 0)
        (handle,), r = self.call(CC_CREATE_PRIMARY, (hierarchy,), params, (Auth(auth),))
        return handle, r.tpm2b()

    def read_public(self, handle: int) -> bytes:
        """TPMT_PUBLIC of a loaded or persistent object."""
        _, r = self.call(CC_READ_PUBLIC, (handle,), b"")
        return r.tpm2b()

    def load(self, parent: int, public: bytes, private: bytes, auth: bytes = b"") -> int:
        """Load a key blob (TPM2B_PUBLIC and TPM2B_PRIVATE, size prefixes included)."""
        (handle,), _ = self.call(CC_LOAD, (parent,), private + public, (Auth(auth),))
        return handle

    def unseal(self, handle: int, auth: bytes) -> bytes:
        """The data of a sealed object."""
        _, r = self.call(CC_UNSEAL, (handle,), b"", (Auth(auth),))
        return r.tpm2b()

    def nv_read_all(self, index: int, auth_handle: int = RH_OWNER) -> bytes:
        """The whole content of an NV index, read in chunks."""
        _, r = self.call(CC_NV_READ_PUBLIC, (index,), b"")
        pub = Reader(r.tpm2b())
        pub.u32(), pub.u16(), pub.u32(), pub.tpm2b()
        size = pub.u16()
        data = b""
        while len(data) < size:
            n = min(512, size - len(data))
            params = struct.pack(">HH", n, len(data))
            _, rr = self.call(CC_NV_READ, (auth_handle, index), params, (Auth(),))
            data += rr.tpm2b()
        return data

    def certify(
        self, obj: int, obj_auth: bytes, signer: int, qualifying: bytes
    ) -> tuple[bytes, bytes]:
        """TPM2_Certify: (TPMS_ATTEST bytes, TPMT_SIGNATURE bytes)."""
        params = b2(qualifying) + struct.pack(">H", 0x0010)  # scheme: the signer's own
        _, r = self.call(CC_CERTIFY, (obj, signer), params, (Auth(obj_auth), Auth()))
        attest = r.tpm2b()
        return attest, r.data[r.at :]

    def ek_policy_session(self) -> int:
        """A policy session satisfying the EK's PolicySecret(TPM_RH_ENDORSEMENT)."""
        params = b2(os.urandom(16)) + b2(b"") + struct.pack(">BHH", 0x01, 0x0010, 0x000B)
        (session,), _ = self.call(CC_START_AUTH_SESSION, (0x40000007, 0x40000007), params)
        try:
            secret = b2(b"") + b2(b"") + b2(b"") + struct.pack(">i", 0)
            self.call(CC_POLICY_SECRET, (RH_ENDORSEMENT, session), secret, (Auth(),))
        except TpmError:
            self.flush(session)
            raise
        return session

    def activate_credential(self, key: int, ek: int, blob: bytes, secret: bytes) -> bytes:
        """TPM2_ActivateCredential: the credential MakeCredential wrapped for ``key`` and ``ek``."""
        session = self.ek_policy_session()
        try:
            _, r = self.call(
                CC_ACTIVATE_CREDENTIAL, (key, ek), blob + secret, (Auth(), Auth(session=session))
            )
        except TpmError:
            self.flush(session)
            raise
        return r.tpm2b()
