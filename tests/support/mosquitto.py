"""A real Mosquitto for tests: own config (listener, TLS, users, ACL, persistence), free port,
stop/kill/restart on the same port, plus a recording subscriber and TLS test material.

Usage::

    from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber, mosquitto_broker
    def test_x(mosquitto_broker): ...           # fixture: started broker, stopped after the test

A missing ``/usr/sbin/mosquitto`` fails in CI and skips elsewhere (``require_real_part``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import require_real_part

MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")


def mosquitto_available() -> bool:
    """True when the broker binary exists and is executable."""
    return os.access(MOSQUITTO, os.X_OK)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsMaterial:
    """CA, server and client certificate files (PEM) for a TLS listener."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_material(directory: Path) -> TlsMaterial:
    """Generate a throw-away CA, a server cert for 127.0.0.1/localhost and a client cert."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("edge-agent test CA"))
        .issuer_name(name("edge-agent test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, usage: x509.ObjectIdentifier, server: bool
    ) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key

    material = TlsMaterial(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    material.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pem, key = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, True)
    material.server_cert.write_bytes(pem)
    write_key(key, material.server_key)
    pem, key = leaf("bench-1", ExtendedKeyUsageOID.CLIENT_AUTH, False)
    material.client_cert.write_bytes(pem)
    write_key(key, material.client_key)
    return material


def make_self_signed_tls(directory: Path) -> TlsMaterial:
    """A self-signed server certificate for 127.0.0.1 that no CA vouches for.

    For a broker with ``require_client_cert=False``: ``ca`` is the certificate itself and
    the client fields repeat it (the broker never asks for them).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed broker")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "self-signed.pem", directory / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return TlsMaterial(
        ca=cert_path,
        server_cert=cert_path,
        server_key=key_path,
        client_cert=cert_path,
        client_key=key_path,
    )


class MosquittoBroker:
    """One mosquitto process with a generated config; restartable on the same port."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        tls: TlsMaterial | None = None,
        require_client_cert: bool = True,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        persistence: bool = True,
        extra_conf: str = "",
    ) -> None:
        require_real_part(mosquitto_available(), f"mosquitto broker ({MOSQUITTO})")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.tls = tls
        self.log_path = workdir / "mosquitto.log"
        self.conf_path = workdir / "mosquitto.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if users else 'true'}",
            # tests queue bursts for offline subscribers; 0 = no limit (default 1000 drops silently)
            "max_queued_messages 0",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"log_dest file {self.log_path}",
        ]
        if os.geteuid() == 0:
            # as root mosquitto drops to user "mosquitto", which cannot write our temp dirs
            # (persistence and log would silently fail)
            lines.append("user root")
        if persistence:
            (workdir / "data").mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {workdir / 'data'}/"]
        if tls is not None:
            lines += [
                f"cafile {tls.ca}",
                f"certfile {tls.server_cert}",
                f"keyfile {tls.server_key}",
                f"require_certificate {'true' if require_client_cert else 'false'}",
            ]
        if users:
            pw = workdir / "passwd"
            pw.write_text("")
            for user, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(pw), user, password],
                    check=True,
                    capture_output=True,
                )
            lines.append(f"password_file {pw}")
        if acl is not None:
            (workdir / "acl").write_text(acl)
            lines.append(f"acl_file {workdir / 'acl'}")
        self.conf_path.write_text("\n".join(lines) + "\n" + extra_conf)

    def start(self, timeout: float = 15.0) -> None:
        """Start and wait until the port accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(
                    f"mosquitto exited with {self.proc.returncode}: {err} {self.log()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return
            if time.monotonic() > end:
                self.kill()
                raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file) and wait."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: in-memory broker state since the last save is lost."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def _signal(self, sig: int, timeout: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """The broker's log file (for assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def default_key(topic: str, payload: bytes) -> str:
    """Test payloads start with ``<key>|``."""
    return payload.split(b"|", 1)[0].decode(errors="replace")


class RecordingSubscriber:
    """A QoS 1 subscriber with a persistent session that records the key of every message."""

    def __init__(
        self,
        broker: MosquittoBroker,
        topic: str = "battrace/v1/#",
        *,
        client_id: str = "test-recorder",
        key_of: Callable[[str, bytes], str] = default_key,
    ) -> None:
        self.counts: Counter[str] = Counter()
        self.messages: list[tuple[str, bytes, bool]] = []  # topic, payload, retain
        self._key_of = key_of
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._topic = topic
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=False,  # broker keeps our QoS 1 messages while we are away
        )
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]
        if broker.tls is not None:
            self.client.tls_set(
                ca_certs=str(broker.tls.ca),
                certfile=str(broker.tls.client_cert),
                keyfile=str(broker.tls.client_key),
            )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect_async(broker.host, broker.port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(15):
            self.close()
            raise RuntimeError("subscriber could not subscribe")

    def _on_connect(
        self, client: paho.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        client.subscribe(self._topic, qos=1)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        key = self._key_of(msg.topic, bytes(msg.payload))
        with self._cond:
            self.counts[key] += 1
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, keys: Iterable[str], timeout: float = 30.0) -> set[str]:
        """Wait until every key was seen; returns the keys still missing (empty = all seen)."""
        wanted = set(keys)
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = {k for k in wanted if self.counts[k] == 0}
                left = end - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A started broker (plain TCP, anonymous, persistence on) stopped after the test."""
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()
        shutil.rmtree(tmp_path / "mosquitto" / "data", ignore_errors=True)
