"""Receipt keys inside a SoftHSM2 token, both hops, real Mosquitto brokers: the gateway signs
its receipts with a token key and the stations verify them (their outbox rows go only on a
verified receipt); the ingest signs its receipts with another key of the same token and the
gateway verifies them (its upstream outbox empties only then). The gateway and the ingest run
in one process here, so they also share the token's one login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.gateway.pipeline import Gateway
from edge_agent.ingest.service import Ingest
from edge_agent.signing.keys import public_key_pem
from edge_agent.signing.signer import key_id
from edge_agent.signing.trust import TrustStore
from edge_agent.tokens.keys import create_key
from edge_agent.tokens.library import TokenSession
from edge_agent.uplink.station_uplink import StationUplink
from tests.ingest.test_upstream_receipts import _station, _submit
from tests.support.gateway import SITE, Rig, pki, rig, wait_until  # noqa: F401
from tests.support.ingest import ingest_settings
from tests.support.ingest_receipts import sample
from tests.support.tokens import Token

pytestmark = pytest.mark.timeout(240)


def token_key_trust(token: Token, label: str, path: Path) -> str:
    """Create ``label`` in the token and a trust store holding its public key; the kid."""
    with TokenSession(token.settings(label), rw=True) as tk:
        public = create_key(tk).public_key
    store = TrustStore.load(path, create=True)
    store.add(public_key_pem(public), station="", site=SITE)
    store.save()
    return key_id(public).hex()


@pytest.fixture
def chain(rig: Rig, softhsm: Token) -> Iterator[tuple[Gateway, Ingest, list[StationUplink]]]:  # noqa: F811
    # _station() reads the gateway's receipt key from gateway-keys.json
    token_key_trust(softhsm, "gateway-receipts", rig.workdir / "gateway-keys.json")
    ingest_trust = rig.workdir / "ingest-receipts-trust.json"
    token_key_trust(softhsm, "ingest-receipts", ingest_trust)
    gw = Gateway(
        rig.settings(
            receipt_pkcs11=softhsm.plain("gateway-receipts"),
            upstream_receipts_trust=str(ingest_trust),
            upstream_receipt_timeout_s=1.0,
        )
    )
    gw.start()
    ingest = Ingest(
        ingest_settings(
            rig.workdir,
            rig.upstream,
            f"sqlite:///{rig.workdir / 'ingest.sqlite3'}",
            receipt_pkcs11=softhsm.plain("ingest-receipts"),
        )
    )
    stations: list[StationUplink] = []
    try:
        assert gw.site.subscribed.wait(20) and gw.upstream.link.wait_subscribed(20)
        ingest.start()
        assert ingest.subscriber.subscribed.wait(20)
        stations = [_station(rig, name) for name in ("st01", "st02")]
        yield gw, ingest, stations
    finally:
        for uplink in stations:
            uplink.publisher.stop()
            uplink.outbox.close()
        ingest.stop()
        gw.stop()


def test_receipts_signed_in_the_token_are_verified_on_both_hops(
    rig: Rig,  # noqa: F811
    chain: tuple[Gateway, Ingest, list[StationUplink]],
) -> None:
    gw, ingest, stations = chain
    sent = [_submit(rig, uplink)[0] for _ in range(3) for uplink in stations]
    assert wait_until(lambda: ingest.store.count() == len(sent), 60), ingest.store.count()
    # the stations delete a row only on a receipt that verifies against the gateway's token key
    assert wait_until(lambda: all(u.outbox.depth == 0 for u in stations), 60)
    # the gateway deletes a forwarded row only on the ingest's receipt, verified the same way
    assert wait_until(lambda: gw.outbox.depth == 0, 60), gw.outbox.state_counts()
    registry = gw.metrics.registry
    assert sample(registry, "gateway_upstream_receipts_total", status="accepted") >= len(sent)
    assert sample(registry, "gateway_upstream_receipts_total", status="rejected") == 0
