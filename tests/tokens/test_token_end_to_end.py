"""End to end with token keys: ``edge-agent run`` signs in the token, ``edge-agent gateway``
verifies and signs its receipts in the token, ``edge-agent verify`` checks a forwarded event;
real Mosquitto site and upstream brokers. And when the token cannot sign, nothing is signed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cbor2
import pytest

from edge_agent.dataform import from_plain
from edge_agent.event_codec import event_from_plain
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.signing.algorithms import ESP256
from edge_agent.signing.keys import init_keys
from edge_agent.signing.trust import TrustStore
from edge_agent.station.control import request_identify
from edge_agent.tokens.keys import find_key
from edge_agent.tokens.library import TokenSession
from tests.station.procs import Service, cli, cli_env, run_cli
from tests.support.gateway import GatewayProcess, gateway_config_file, wait_until
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber
from tests.support.station import SITE, STATION, event_key, write_config
from tests.support.tokens import Token, softhsm_token, write_pin

pytestmark = pytest.mark.timeout(600)


def keys_cli(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``edge-agent keys ARGS`` (with ``env`` added); its stdout."""
    done = subprocess.run(
        cli(config, "keys", *args),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**cli_env(), **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Rig:
    root: Path
    token: Token
    site: MosquittoBroker
    upstream: MosquittoBroker
    config: Path
    data_dir: Path
    key_dir: Path
    trust_path: Path
    station_kid: str
    gateway: GatewayProcess
    upstream_events: RecordingSubscriber

    def start_station(self) -> Service:
        service = Service(self.config, self.data_dir)
        service.wait_ready(90)
        return service

    def outbox_rows(self) -> int:
        path = self.data_dir / "outbox.sqlite3"
        if not path.exists():
            return 0
        with sqlite3.connect(path) as db:
            return int(db.execute("select count(*) from outbox").fetchone()[0])


def token_station_config(
    path: Path, token: Token, broker: MosquittoBroker, data: Path, keys: Path, **uplink: object
) -> Path:
    return write_config(
        path,
        {
            "station": {"site": SITE, "station": STATION, "data_dir": str(data)},
            "signing": {"key_dir": str(keys), "pkcs11": token.plain("station")},
            "bms": {"profile": ""},
            "label": {"source": ""},
            "uplink": {
                "mqtt": {
                    "host": broker.host,
                    "port": broker.port,
                    "client_id": f"agent-{STATION}",
                    "reconnect_min_s": 0.05,
                    "reconnect_max_s": 0.3,
                },
                "outbox": {"min_free_disk_bytes": 0},
                **uplink,
            },
        },
    )


@pytest.fixture
def rig(token: Token, tmp_path: Path) -> Iterator[Rig]:
    site = MosquittoBroker(tmp_path / "site")
    site.start()
    upstream = MosquittoBroker(tmp_path / "upstream")
    upstream.start()
    data, keys = tmp_path / "station-data", tmp_path / "station-keys"
    # a usable key FILE sits in key_dir too: it must never sign in place of the token key
    init_keys(keys, "p256")
    receipts_trust = tmp_path / "receipts-trust.json"
    config = token_station_config(
        tmp_path / "station.toml",
        token,
        site,
        data,
        keys,
        receipts="required",
        receipts_trust=str(receipts_trust),
        receipt_timeout_s=1.0,
    )
    # the operator's commands: keys made inside the token, trusted by their public keys
    station_pub, gateway_pub = tmp_path / "station.pub.pem", tmp_path / "gateway.pub.pem"
    kid = keys_cli(config, "init", "--pub-out", str(station_pub))
    # The gateway runs on its own machine. swtpm has no resource manager (a Pi has the
    # kernel's /dev/tpmrm0), so only one process may use it at a time: with a TPM station the
    # gateway's receipt key sits in a SoftHSM2 token of its own.
    gw_token = token if token.kind == "softhsm2" else softhsm_token(tmp_path / "gw-softhsm")
    gw_flags = ["--pkcs11", "--module", str(gw_token.module), "--token-label", gw_token.label,
                "--key-label", "gateway-receipts", "--pin-file", str(gw_token.pin_file)]  # fmt: skip
    keys_cli(config, "init", *gw_flags, "--pub-out", str(gateway_pub), env=gw_token.env)
    trust = tmp_path / "trust.json"
    keys_cli(config, "trust", "--store", str(trust), "--add", str(station_pub),
             "--station", STATION, "--site", SITE)  # fmt: skip
    keys_cli(config, "trust", "--store", str(receipts_trust), "--add", str(gateway_pub),
             "--site", SITE)  # fmt: skip
    settings = from_plain(
        GatewaySettings,
        {
            "site_mqtt": {"host": site.host, "port": site.port, "client_id": "gw",
                          "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
            "upstream_mqtt": {"host": upstream.host, "port": upstream.port,
                              "client_id": "gw-up", "reconnect_min_s": 0.1,
                              "reconnect_max_s": 0.5},
            "upstream_prefix": "cloud/v1",
            "trust_store": str(trust),
            "data_dir": str(tmp_path / "gateway"),
            "receipt_pkcs11": gw_token.plain("gateway-receipts"),
            "outbox": {"min_free_disk_bytes": 0},
        },
    )  # fmt: skip
    gateway = GatewayProcess(
        gateway_config_file(tmp_path / "gateway.toml", settings),
        tmp_path / "gateway.log",
        env=gw_token.env,
    )
    recorder = RecordingSubscriber(
        upstream,
        "cloud/v1/+/+/event",
        client_id="upstream-rec",
        key_of=event_key(TrustStore.load(trust)),
    )
    rig = Rig(tmp_path, token, site, upstream, config, data, keys, trust, kid, gateway, recorder)
    try:
        gateway.start()
        assert wait_until(lambda: "gateway ready" in gateway.log.read_text(errors="replace"), 90), (
            gateway.log.read_text()[-3000:]
        )
        yield rig
    finally:
        recorder.close()
        gateway.kill()
        site.kill()
        upstream.kill()


def identify(service: Service, n: int) -> list[str]:
    async def run() -> list[str]:
        ids = []
        for _ in range(n):
            answer = await request_identify(service.socket, [], 30.0)
            assert answer["ok"], answer
            ids.append(event_from_plain(answer["event"]).event_id)
        return ids

    return asyncio.run(run())


def test_station_gateway_and_verify_with_token_keys(rig: Rig) -> None:
    station = rig.start_station()
    try:
        ids = identify(station, 3)
        # upstream: each event once, verified against the trust store that holds the token key
        assert not rig.upstream_events.wait_for(ids, 60)
        assert set(rig.upstream_events.counts) == set(ids)
        # the station deletes rows only on the gateway's receipt, signed in the token too
        assert wait_until(lambda: rig.outbox_rows() == 0, 60)
    finally:
        station.close()
    _topic, payload, _ = next(m for m in rig.upstream_events.messages if m[0].endswith("/event"))
    protected = cbor2.loads(cbor2.loads(payload).value[0])
    assert protected[1] == ESP256 and protected[4].hex() == rig.station_kid
    message = rig.root / "event.cose"
    message.write_bytes(payload)
    done = run_cli(rig.config, "verify", str(message), "--trust", str(rig.trust_path), "--json")
    assert done.returncode == 0, done.stderr
    assert f'"kid": "{rig.station_kid}"' in done.stdout


def test_a_token_that_cannot_sign_signs_nothing(rig: Rig, tmp_path: Path) -> None:
    token = rig.token
    wrong = write_pin(tmp_path / "wrong-pin", "123123")
    bad_pin = token_station_config(
        tmp_path / "bad-pin.toml", token, rig.site, rig.data_dir, rig.key_dir
    )
    bad_pin.write_text(bad_pin.read_text().replace(str(token.pin_file), str(wrong)))
    gone = tmp_path / "gone.toml"
    gone.write_text(bad_pin.read_text().replace(str(wrong), str(token.pin_file)).replace(
        f'"token_label" = "{token.label}"', '"token_label" = "unplugged"'))  # fmt: skip
    for config, line in ((bad_pin, "refused the PIN"), (gone, "no token labelled 'unplugged'")):
        for command in ("run", "identify"):
            done = run_cli(config, command)
            assert done.returncode == 2, (command, done.stdout, done.stderr)
            last = [x for x in done.stderr.splitlines() if x.strip()][-1]
            assert last.startswith("error: ") and line in last, done.stderr
            assert "Traceback" not in done.stderr
    with TokenSession(token.settings("station"), rw=True) as tk:
        find_key(tk).private.destroy()
    done = run_cli(rig.config, "identify")
    assert done.returncode == 2 and "no private key labelled 'station'" in done.stderr
    # nothing was signed with anything else: no outbox row, nothing forwarded
    assert rig.outbox_rows() == 0
    assert rig.upstream_events.counts == {}
