"""An EU battery-passport-style JSON document per pack, from its latest stored intake event.

Regulation (EU) 2023/1542 Annex XIII(4) asks per battery for SoH and status; the field list
here is a summary of that annex from secondary sources (../shared/docs/reference/standards.md
§4), so every document says which of its fields are unconfirmed against the regulation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edge_agent.ingest.records import Query, superseded, verify_row, where_clause
from edge_agent.ingest.store import EventRow, EventStore
from edge_agent.signing.trust import TrustStore

SCHEMA_ID = "https://edge-agent.invalid/schemas/passport-export.schema.json"
# the intake's EU status as is; without one, only material recycling says "waste"
_STATUS_FROM_DISPOSITION = {"material_recycling": "waste"}
UNCONFIRMED_FIELDS = (
    "status",  # Annex XIII(4) status list comes from a secondary summary
    "identifiers.passport_id",  # the Art. 13 unique identifier's scheme (ISO/IEC 15459?)
    "soh.definition",  # the delegated act on SoH parameters is not in the reference docs
    "ratings.rated_energy_kwh",  # Annex XIII(1) lists Ah, V and W, not kWh
    "manufacturer",  # from the pack code or BMS, not the operator placing it on the market
)


@dataclass(frozen=True, slots=True)
class PassportRow:
    """One pack's document and the file stem it is written under."""

    pack_code: str
    document: dict[str, Any]


def _source(row: EventRow, trust: TrustStore | None) -> dict[str, Any]:
    problem = verify_row(row, trust) if trust is not None else None
    return {
        "event_id": row.event_id,
        "kid": row.kid,
        "site": row.site,
        "station": row.station,
        "event_utc": row.event_utc,
        "received_utc": row.received_utc,
        "corrects": row.corrects,
        # checked at ingest always; re-checked now when a trust store was given
        "signature_verified_at_ingest": True,
        "signature_reverified": None if problem is None else not problem,
    }


def _status(intake: dict[str, Any], disposition: str) -> tuple[str, str | None]:
    if isinstance(intake.get("eu_status"), str):
        return intake["eu_status"], "intake.eu_status"
    if disposition in _STATUS_FROM_DISPOSITION:
        return _STATUS_FROM_DISPOSITION[disposition], "triage.disposition"
    return "unknown", None


def document(row: EventRow, sources: list[dict[str, Any]]) -> dict[str, Any]:
    """The passport-style document of the pack in ``row`` (its latest current event)."""
    body = json.loads(row.body_json)
    pack = body.get("pack") or {}
    intake = body.get("intake") or {}
    soh = (((body.get("readings") or {}).get("bms") or {}).get("state") or {}).get("soh") or {}
    soh_value = soh.get("value") if isinstance(soh, dict) else None
    status, status_source = _status(intake, row.disposition)
    return {
        "$schema": SCHEMA_ID,
        "pack_code": row.pack_code,
        "identifiers": {
            "pack_code": row.pack_code,
            "code_kind": pack.get("code_kind"),
            "passport_id": pack.get("passport_id"),
            "serial": pack.get("serial"),
            "vin": row.vin,
        },
        "status": status,
        "status_source": status_source,
        "disposition": row.disposition,
        "battery_category": intake.get("eu_category"),
        "chemistry": pack.get("battery_type"),
        "ratings": {
            "rated_capacity_ah": pack.get("rated_capacity_ah"),
            "nominal_voltage_v": pack.get("nominal_voltage_v"),
            "rated_energy_kwh": pack.get("rated_energy_kwh"),
        },
        "soh": {
            "value_percent": soh_value if isinstance(soh_value, int | float) else None,
            "definition": intake.get("soh_definition"),
        },
        "manufacturer": {
            "name": pack.get("manufacturer_name") or pack.get("manufacturer"),
            "code": pack.get("manufacturer_code"),
        },
        "production_date": pack.get("production_date"),
        "intake_utc": row.event_utc,
        "source_events": sources,
        "unconfirmed": list(UNCONFIRMED_FIELDS),
    }


def passports(
    store: EventStore, query: Query, *, trust: TrustStore | None = None
) -> Iterator[PassportRow]:
    """One document per pack code matching ``query``, from its latest current event.

    Holds one row per pack code in memory (not one per event); events without a pack code
    have no passport.
    """
    where, params = where_clause(query)
    replaced = superseded(store)
    latest: dict[str, EventRow] = {}
    for row in store.pages(where, params):
        if row.pack_code and row.event_id not in replaced:
            latest[row.pack_code] = row  # event-id order: the last one is the newest
    for pack_code, row in sorted(latest.items()):
        chain = [row]
        seen = {row.event_id}
        while (original := chain[-1].corrects) is not None and original not in seen:
            found = store.select("event_id = ?", [original], limit=1)
            if not found:
                break
            chain.append(found[0])
            seen.add(original)
        yield PassportRow(pack_code, document(row, [_source(r, trust) for r in chain]))
