"""Our events verified by a third-party COSE library (pycose 1.1) in the configuration
docs/signing.md lists as working: legacy alg ids (-8/-7) and cbor2 5.x (issue 15).

pycose 1.1 runs in a subprocess on its own path, with cbor2 5.9 shadowing the project's cbor2:
under cbor2 6 it cannot read any COSE message (tag contents decode as a tuple).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.signing.events import sign_event
from edge_agent.signing.keys import init_keys, load_signer
from tests.conftest import require_real_part
from tests.support.signing import example_event

pytestmark = pytest.mark.timeout(300)

PYCOSE_SET = ["cbor2==5.9.0", "pycose==1.1.0", "ecdsa", "certvalidator", "oscrypto", "asn1crypto"]

VERIFY = r"""
import sys
import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys import EC2Key, OKPKey
from pycose.messages import Sign1Message

from importlib.metadata import version
assert version("cbor2").startswith("5.") and cbor2.__file__.startswith(sys.path[1]), cbor2.__file__
message, pem = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
public = serialization.load_pem_public_key(pem)
if isinstance(public, ec.EllipticCurvePublicKey):
    n = public.public_numbers()
    key = EC2Key(crv="P_256", x=n.x.to_bytes(32, "big"), y=n.y.to_bytes(32, "big"))
else:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = OKPKey(crv="ED25519", x=raw)
msg = Sign1Message.decode(message)
msg.key = key
msg.external_aad = sys.argv[3].encode()
print("valid" if msg.verify_signature() else "invalid")
print(cbor2.loads(msg.payload)["event_id"])
"""


@pytest.fixture(scope="module")
def pycose_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("pycose")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), *PYCOSE_SET],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    require_real_part(done.returncode == 0, f"pycose from the package index: {done.stderr[-500:]}")
    return target


def _pycose_verify(path: Path, message: Path, pem: Path, topic: str = "") -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", VERIFY, str(message), str(pem), topic],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_pycose_verifies_legacy_alg_events(pycose_path: Path, tmp_path: Path, alg: str) -> None:
    keys = tmp_path / "keys"
    init_keys(keys, alg)  # type: ignore[arg-type]
    signer = load_signer(keys, legacy_alg_ids=True)
    event = example_event(signer.kid.hex())
    topic = "battrace/v1/site-1/bench-1/event"
    message = tmp_path / "event.cose"
    message.write_bytes(sign_event(event, signer, external_aad=topic.encode()))
    pem = keys / "station.pub.pem"
    assert _pycose_verify(pycose_path, message, pem, topic) == ["valid", event.event_id]
    # the same library notices a changed byte and another topic
    assert _pycose_verify(pycose_path, message, pem, topic + "x")[0] == "invalid"
    tampered = bytearray(message.read_bytes())
    tampered[-1] ^= 1
    message.write_bytes(bytes(tampered))
    assert _pycose_verify(pycose_path, message, pem, topic)[0] == "invalid"
