"""Reference traceability backend: verified events into a database, evidence, records, receipts.

Public modules: ``settings``, ``service`` (``edge-agent ingest``), ``store`` and ``records``
(``edge-agent records ...``), ``api`` (``edge-agent records serve``); importing the package
imports none of them.
"""

__all__ = [
    "acks",
    "api",
    "blobs",
    "blobs_s3",
    "check",
    "db",
    "evidence",
    "migrations",
    "records",
    "service",
    "settings",
    "store",
]
