"""BMS acquisition over CAN (python-can 4.x).

``profile_source.CanProfileSource`` is the composite ``bms.registry.open_bms`` returns.
Methods: ``gbt27930`` (charger emulation, J1939 TP in ``j1939_tp``/``j1939_tp_sender``),
``uds`` (can-isotp + udsoncan), ``dbc`` (cantools, pre-indexed ids). Buses: ``bus``.
"""

# public modules; importing the package imports none of them
__all__ = [
    "bus",
    "dbc_decoder",
    "dbc_source",
    "gbt27930",
    "gbt27930_encode",
    "j1939_tp",
    "j1939_tp_sender",
    "profile_sections",
    "profile_source",
    "reading",
]
