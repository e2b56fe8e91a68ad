"""``uds`` method: identification DIDs over ISO-TP (can-isotp NotifierBasedCanStack + udsoncan).

udsoncan's client is blocking, so the reads run in an executor thread while the bus's
notifier keeps feeding the ISO-TP stack. Each DID is its own result: a negative response or
a timeout becomes a problem line, not a failure; only a silent ECU fails the method. Timing
follows ISO 14229-2 (P2 50 ms, P2* 5 s after NRC 0x78 "response pending", plus the tester's
latency allowance); an ECU that answers "pending" is busy, never silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import can
import isotp
import udsoncan
from udsoncan import exceptions as uds_exc
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpConnection

from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.can.profile_sections import STANDARD_DIDS, UdsDid, UdsSection
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.can.source_base import CanMethodSource
from edge_agent.bms.can.uds_codecs import decode_did
from edge_agent.bms.profile import PackProfile
from edge_agent.errors import BusError, BusTimeoutError, FrameError

log = logging.getLogger(__name__)


class _RawCodec(udsoncan.DidCodec):  # type: ignore[misc]
    """Hands the whole DID payload back as bytes (one DID per request)."""

    def decode(self, payload: bytes) -> bytes:
        return bytes(payload)

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


@dataclass(frozen=True)
class DidResult:
    """Outcome of reading one DID: a payload or a problem."""

    did: int
    payload: bytes | None = None
    problem: str = ""
    answered: bool = False


def did_plan(section: UdsSection) -> list[UdsDid]:
    """Profile DIDs first (pack-specific, most trusted), then the standard identification DIDs."""
    plan = list(section.dids)
    if section.standard_dids:
        known = {d.did for d in plan}
        plan += [UdsDid(did=did, field=name) for did, name in STANDARD_DIDS if did not in known]
    if section.standard_dids:
        plan = [replace_codec(d) if d.did == 0xF18B and d.codec == "ascii" else d for d in plan]
    return plan


def replace_codec(spec: UdsDid) -> UdsDid:
    """F18B (manufacturing date) is BCD by ISO 14229 convention."""
    from dataclasses import replace

    return replace(spec, codec="bcd_date")


def read_dids_blocking(
    bus: can.BusABC, notifier: can.Notifier, section: UdsSection, dids: list[int], end: float
) -> list[DidResult]:
    """Read DIDs one request each until ``end`` (monotonic); runs in a worker thread."""
    mode = (
        isotp.AddressingMode.Normal_29bits
        if section.extended_ids
        else isotp.AddressingMode.Normal_11bits
    )
    address = isotp.Address(mode, txid=section.tx_id, rxid=section.rx_id)
    params: dict[str, Any] = {"blocking_send": False}
    if section.tx_padding is not None:
        params["tx_padding"] = section.tx_padding
    stack = isotp.NotifierBasedCanStack(bus, notifier, address=address, params=params)
    config: dict[str, Any] = dict(udsoncan.configs.default_client_config)
    config["data_identifiers"] = {did: _RawCodec for did in dids}
    config["exception_on_negative_response"] = True
    config["use_server_timing"] = False
    pending: list[int] = []  # NRC 0x78 count of the request in flight
    config["nrc78_callback"] = lambda: pending.append(1)
    results: list[DidResult] = []
    silent = 0
    with Client(PythonIsoTpConnection(stack), config=cast(Any, config)) as client:
        for did in dids:
            remaining = end - time.monotonic()
            if remaining <= 0.05:
                results.append(DidResult(did, problem="not read: out of time"))
                continue
            if silent >= 2 and not any(r.answered for r in results):
                results.append(DidResult(did, problem="not read: ECU silent"))
                continue
            first = min(section.first_answer_s, remaining)
            # the overall limit is only the read's budget: an ECU that keeps saying "pending"
            # (0x78) gets P2* per answer, as ISO 14229-2 allows, until the budget runs out
            client.set_configs(
                {
                    "request_timeout": remaining,
                    "p2_timeout": first,
                    "p2_star_timeout": section.pending_answer_s,
                }
            )
            pending.clear()
            results.append(_read_one(client, did, first, section.pending_answer_s, pending))
            if results[-1].problem.startswith("no response"):
                silent += 1
    return results


def _read_one(
    client: Client, did: int, first: float, after_pending: float, pending: list[int]
) -> DidResult:
    try:
        response = client.read_data_by_identifier(did)
        return DidResult(did, payload=response.service_data.values[did], answered=True)
    except uds_exc.NegativeResponseException as exc:
        code = exc.response.code
        return DidResult(
            did, problem=f"negative response 0x{code:02X} ({exc.response.code_name})", answered=True
        )
    except uds_exc.TimeoutException:
        if pending:  # the ECU is there and busy: not silence
            return DidResult(
                did,
                problem=f"response pending (0x78) {len(pending)} time(s), then no answer "
                f"within {after_pending:.2f} s",
                answered=True,
            )
        return DidResult(did, problem=f"no response within {first:.2f} s")
    except (uds_exc.InvalidResponseException, uds_exc.UnexpectedResponseException) as exc:
        return DidResult(did, problem=f"bad response: {exc}", answered=True)
    except (can.CanError, OSError) as exc:
        raise BusError(f"UDS request failed on the bus: {exc}") from None


async def collect_uds(
    bus: BusSession, profile: PackProfile, out: ReadingBuilder, budget_s: float
) -> None:
    """Read the profile's DIDs and write decoded values into ``out``."""
    section = profile.uds or UdsSection()
    if bus.replay:
        raise BusError("UDS needs a live bus: a replayed recording cannot answer requests")
    plan = did_plan(section)
    assert bus.bus is not None and bus.notifier is not None
    end = time.monotonic() + budget_s - 0.25  # leave time to stop the ISO-TP stack
    loop = asyncio.get_running_loop()
    results = await loop.run_in_executor(
        None, read_dids_blocking, bus.bus, bus.notifier, section, [d.did for d in plan], end
    )
    by_did = {r.did: r for r in results}
    profile_dids = {d.did for d in section.dids}
    if not any(r.answered for r in results):
        raise BusTimeoutError(
            f"no UDS response from id {section.rx_id:#x} to requests on {section.tx_id:#x} "
            f"at {bus.settings.bitrate} bit/s"
        )
    for spec in plan:
        result = by_did[spec.did]
        tag = f"uds:{spec.did:04X}"
        if result.payload is None:
            if spec.did not in profile_dids and result.problem.startswith("negative response 0x31"):
                log.info("%s: not supported by this ECU", tag)  # optional DID: not a problem
            else:
                out.problems.append(f"{tag}: {result.problem}")
            continue
        try:
            value = decode_did(spec, result.payload)
        except FrameError as exc:
            out.problems.append(f"{tag}: {exc}")
            continue
        try:
            out.put(spec.field, value, tag)
        except KeyError as exc:
            out.problems.append(f"{tag}: {exc}")


class UdsSource(CanMethodSource):
    """A BmsSource that reads only UDS identification DIDs."""

    name = "uds"
    fixed_methods = ("uds",)
    collect = staticmethod(collect_uds)
