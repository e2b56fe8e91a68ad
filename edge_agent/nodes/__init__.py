"""Host side of the MicroPython nodes: line protocol, serial and MQTT links, registry, readings.

Public modules: ``registry`` (open every configured node), ``readings`` (weight, sensors,
dock triggers), ``link`` and ``mqtt_link`` (one node), ``messages``, ``protocol``, ``settings``.
"""

# public modules; importing the package imports none of them
__all__ = [
    "link",
    "messages",
    "mqtt_link",
    "protocol",
    "readings",
    "registry",
    "settings",
]
