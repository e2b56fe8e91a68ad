"""``edge-agent records find|export|verify|serve``: query the store, export, audit, serve JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_agent.commands.ingest import settings_from


def register(sub: Any) -> None:
    """Add ``records find``, ``records export`` and ``records verify``."""
    parser = sub.add_parser("records", help="find, export and verify stored events")
    commands = parser.add_subparsers(dest="records_command", metavar="SUBCOMMAND", required=True)
    find = commands.add_parser("find", help="stored events by pack code, VIN, id, station, date")
    _common(find)
    find.add_argument("pack_code", nargs="?", default=None, help="GB/T 34014 pack code")
    _filters(find)
    find.add_argument("--event", dest="event_id", default=None, help="event id")
    find.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    find.set_defaults(func=_find)
    export = commands.add_parser("export", help="the intake ledger as CSV or JSON lines")
    _common(export)
    export.add_argument("--format", dest="fmt", default="csv", help="csv (default) or json")
    export.add_argument("--from", dest="since", default=None, help="first day (event clock)")
    export.add_argument("--to", dest="until", default=None, help="last day, inclusive")
    export.add_argument("--pack-code", default=None)
    export.add_argument("--vin", default=None)
    export.add_argument("--site", default=None)
    export.add_argument("--station", default=None)
    export.add_argument("--disposition", default=None)
    export.add_argument("--output", "-o", type=Path, default=None, help="file (default stdout)")
    export.set_defaults(func=_export)
    verify = commands.add_parser("verify", help="re-check every signature and evidence hash")
    _common(verify)
    verify.add_argument("--trust-store", type=Path, default=None, help="default from [ingest]")
    verify.set_defaults(func=_verify)
    serve = commands.add_parser("serve", help="read-only, token-protected HTTP JSON API")
    _common(serve)
    serve.add_argument(
        "--token-file", type=Path, required=True, help="owner-only file holding the bearer token"
    )
    serve.add_argument("--bind", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    serve.set_defaults(func=_serve)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", dest="ingest_config", type=Path, default=argparse.SUPPRESS, help="TOML file"
    )
    parser.add_argument("--database", default=argparse.SUPPRESS, help="default from [ingest]")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vin", default=None)
    parser.add_argument("--site", default=None)
    parser.add_argument("--station", default=None)
    parser.add_argument("--disposition", default=None)
    parser.add_argument("--since", default=None, help="ISO date or UTC time (event clock)")
    parser.add_argument("--until", default=None, help="ISO date (inclusive) or UTC time")


def _store(args: argparse.Namespace) -> Any:
    from edge_agent.ingest.db import Database
    from edge_agent.ingest.store import EventStore

    return EventStore(Database(settings_from(args).database_url))


def _find(args: argparse.Namespace) -> int:
    from edge_agent.ingest.records import Query, find, summary

    query = Query(
        pack_code=args.pack_code,
        vin=args.vin,
        event_id=args.event_id,
        site=args.site,
        station=args.station,
        disposition=args.disposition,
        since=args.since,
        until=args.until,
    )
    store = _store(args)
    try:
        rows = find(store, query, limit=args.limit)
    finally:
        store.db.close()
    for row in rows:
        print(json.dumps(summary(row), ensure_ascii=False, sort_keys=True))
    return 0 if rows else 1


def _export(args: argparse.Namespace) -> int:
    from edge_agent.ingest.records import Query, export, export_rows

    query = Query(
        pack_code=args.pack_code,
        vin=args.vin,
        site=args.site,
        station=args.station,
        disposition=args.disposition,
        since=args.since,
        until=args.until,
    )
    store = _store(args)
    try:
        rows = export_rows(store, query)
        if args.output is None:
            count = export(rows, sys.stdout, fmt=args.fmt)
        else:
            tmp = args.output.with_name(args.output.name + ".part")
            with tmp.open("w", encoding="utf-8", newline="") as out:
                count = export(rows, out, fmt=args.fmt)
            tmp.replace(args.output)
    finally:
        store.db.close()
    print(f"{count} records", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edge_agent.ingest.evidence import EvidenceStore
    from edge_agent.ingest.records import verify_all
    from edge_agent.signing.trust import TrustStore

    settings = settings_from(args)
    trust = TrustStore.load(args.trust_store or settings.trust_store)
    store = _store(args)
    try:
        report = verify_all(store, trust, EvidenceStore(settings.evidence_path))
    finally:
        store.db.close()
    for line in report.problems:
        print(f"MISMATCH {line}")
    for line in report.evidence_missing:
        print(f"missing evidence {line}")
    print(
        f"{report.events} events, {report.evidence_ok} evidence files ok, "
        f"{len(report.evidence_missing)} missing, {len(report.problems)} mismatches"
    )
    return 0 if report.ok else 1


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from edge_agent.ingest.api import read_token, serve_forever

    token = read_token(args.token_file)  # before anything opens: a bad file is exit status 2
    return asyncio.run(
        serve_forever(settings_from(args).database_url, token=token, host=args.bind, port=args.port)
    )
