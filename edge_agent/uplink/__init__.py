"""Station uplink: SQLite outbox, paho-mqtt link, outbox publisher, topic names.

Public modules: ``outbox``, ``publisher``, ``mqtt``, ``topics``, ``metrics``, ``settings``.
"""

# public modules; importing the package imports none of them
__all__ = [
    "metrics",
    "mqtt",
    "outbox",
    "publisher",
    "settings",
    "topics",
]
