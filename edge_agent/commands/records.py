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
    export = commands.add_parser(
        "export", help="the intake ledger (CSV, XLSX, JSON lines) or passport-style JSON per pack"
    )
    _common(export)
    export.add_argument(
        "--format",
        dest="fmt",
        default="csv",
        help="csv (default), json, xlsx (needs -o FILE) or passport (-o DIR, or JSON lines)",
    )
    export.add_argument("--from", dest="since", default=None, help="first day (event clock)")
    export.add_argument("--to", dest="until", default=None, help="last day, inclusive")
    export.add_argument("--pack-code", default=None)
    export.add_argument("--vin", default=None)
    export.add_argument("--site", default=None)
    export.add_argument("--station", default=None)
    export.add_argument("--disposition", default=None)
    export.add_argument(
        "--output", "-o", type=Path, default=None, help="file, or directory for passport"
    )
    export.add_argument(
        "--trust-store", type=Path, default=None, help="passport: re-check each signature"
    )
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
    from edge_agent.ingest.records import Query, find_with_links

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
        lines = find_with_links(store, query, limit=args.limit)
    finally:
        store.db.close()
    for line in lines:
        print(json.dumps(line, ensure_ascii=False, sort_keys=True))
    return 0 if lines else 1


def _export(args: argparse.Namespace) -> int:
    from edge_agent.errors import RecordsQueryError
    from edge_agent.ingest.records import Query, where_clause

    query = Query(
        pack_code=args.pack_code,
        vin=args.vin,
        site=args.site,
        station=args.station,
        disposition=args.disposition,
        since=args.since,
        until=args.until,
    )
    if args.fmt not in EXPORT_FORMATS:
        raise RecordsQueryError(
            f"format: one of {', '.join(EXPORT_FORMATS)}, not {args.fmt[:20]!r}"
        )
    if args.fmt == "xlsx" and args.output is None:
        raise RecordsQueryError("format xlsx: give -o FILE (a workbook is not written to stdout)")
    where_clause(query)  # a malformed filter is an error before any file is made
    store = _store(args)
    try:
        if args.fmt == "passport":
            count = _export_passports(args, store, query)
        else:
            count = _export_ledger(args, store, query)
    finally:
        store.db.close()
    print(f"{count} records", file=sys.stderr)
    return 0


EXPORT_FORMATS = ("csv", "json", "xlsx", "passport")


def _export_ledger(args: argparse.Namespace, store: Any, query: Any) -> int:
    from edge_agent.ingest.records import export, export_rows

    rows = export_rows(store, query)
    if args.output is None:
        return int(export(rows, sys.stdout, fmt=args.fmt))
    path: Path = args.output
    tmp = path.with_name(path.name + ".part")
    try:
        if args.fmt == "xlsx":
            from edge_agent.ingest.ledger_xlsx import write_xlsx

            count = write_xlsx(rows, tmp)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as out:
                count = export(rows, out, fmt=args.fmt)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _output_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return int(count)


def _export_passports(args: argparse.Namespace, store: Any, query: Any) -> int:
    from edge_agent.ingest.passport import passports

    trust = None
    if args.trust_store is not None:
        from edge_agent.signing.trust import TrustStore

        trust = TrustStore.load(args.trust_store)
    count = 0
    if args.output is None:
        for item in passports(store, query, trust=trust):
            print(json.dumps(item.document, ensure_ascii=False, sort_keys=True))
            count += 1
        return count
    folder: Path = args.output
    if not folder.is_dir():
        raise _output_error(folder, NotADirectoryError("not a directory"))
    for item in passports(store, query, trust=trust):
        path = folder / f"{item.pack_code}.json"
        tmp = path.with_name(path.name + ".part")
        try:
            tmp.write_text(
                json.dumps(item.document, ensure_ascii=False, sort_keys=True, indent=2) + "\n",
                encoding="utf-8",
            )
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _output_error(path, exc) from None
        count += 1
    return count


def _output_error(path: Path, exc: OSError) -> Exception:
    from edge_agent.errors import RecordsOutputError

    reason = exc.strerror or str(exc)
    return RecordsOutputError(f"output {str(path)[:200]}: {reason}")


def _verify(args: argparse.Namespace) -> int:
    from edge_agent.ingest.blobs import open_blob_store
    from edge_agent.ingest.records import verify_all
    from edge_agent.signing.trust import TrustStore

    settings = settings_from(args)
    trust = TrustStore.load(args.trust_store or settings.trust_store)
    evidence = open_blob_store(settings)  # the store [ingest.evidence] names
    store = _store(args)
    try:
        report = verify_all(store, trust, evidence)
    finally:
        store.db.close()
        evidence.close()
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
