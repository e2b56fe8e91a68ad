"""BMS acquisition: the BmsSource seam, pack profiles, CAN (GB/T 27930, UDS, DBC) and Modbus
backends.

Public modules: ``source`` (the seam), ``profile`` (pack profiles), ``settings``, and the
``can`` and ``modbus`` backends.
"""

# public modules; importing the package imports none of them
__all__ = [
    "can",
    "modbus",
    "profile",
    "settings",
    "source",
]
