"""GB/T 27930-2015 BST (BMS stop charging) and BEM (BMS error) frames as fault tokens.

Both are 4 bytes of 2-bit fields: 00 normal, 01 set, 10 not credible, 11 unused (filled with 1).
Layout from the 2015 text as extracted in lonlionl/gb27930-bms-can-monitor
(tools/GB_T_27930_报文格式定义.md 3.17 and 3.21; standards.md section 2 lists the messages).
Annex C.3 says a receiver keeps the previous state on a "not credible" field, so 10 emits no
token here. Every token ``decode_bst`` and ``decode_bem`` can emit is in the fault vocabulary
(``edge_agent/bms/faults.py``).
"""

from __future__ import annotations

from edge_agent.errors import FrameError

# (byte, shift, token when the field is 01)
BST_FIELDS: tuple[tuple[int, int, str], ...] = (
    # SPN 3511 why the BMS stops: an ordinary end of charge
    (0, 0, "bst_soc_reached"),
    (0, 2, "bst_total_voltage_reached"),
    (0, 4, "bst_cell_voltage_reached"),
    (0, 6, "bst_charger_stopped"),
    # SPN 3512 fault reasons
    (1, 0, "bst_insulation"),
    (1, 2, "bst_output_connector_overtemperature"),
    (1, 4, "bst_bms_connector_overtemperature"),
    (1, 6, "bst_charging_connector_fault"),
    (2, 0, "bst_pack_overtemperature"),
    (2, 2, "bst_hv_relay_fault"),
    (2, 4, "bst_detection_point_2_fault"),
    (2, 6, "bst_other_fault"),
    # SPN 3513 error reasons
    (3, 0, "bst_overcurrent"),
    (3, 2, "bst_voltage_abnormal"),
)

# BEM: the BMS timed out waiting for one of the charger's messages
BEM_FIELDS: tuple[tuple[int, int, str], ...] = (
    (0, 0, "bem_crm_00_timeout"),  # SPN 3901 CRM (not recognised)
    (0, 2, "bem_crm_aa_timeout"),  # SPN 3902 CRM (recognised)
    (1, 0, "bem_cts_cml_timeout"),  # SPN 3903 time sync and maximum output
    (1, 2, "bem_cro_timeout"),  # SPN 3904 charger ready
    (2, 0, "bem_ccs_timeout"),  # SPN 3905 charger status
    (2, 2, "bem_cst_timeout"),  # SPN 3906 charger stop
    (3, 0, "bem_csd_timeout"),  # SPN 3907 charger statistics
)
BEM_OTHER = "bem_other"  # byte 4 bits 3-8 ("other", optional): anything but all ones or zero

#: every token the decoders can emit (the fault vocabulary must know each one)
BST_FAULT_NAMES = frozenset(token for _, _, token in BST_FIELDS)
BEM_FAULT_NAMES = frozenset([*(token for _, _, token in BEM_FIELDS), BEM_OTHER])


def _fields(name: str, data: bytes, table: tuple[tuple[int, int, str], ...]) -> list[str]:
    if len(data) < 4:
        raise FrameError(f"{name}: needs 4 bytes, got {len(data)}", frame=bytes(data))
    return [token for byte, shift, token in table if (data[byte] >> shift) & 3 == 1]


def decode_bst(data: bytes) -> tuple[str, ...]:
    """BST: the stop, fault and error reasons that are set, as fault tokens."""
    return tuple(_fields("BST", data, BST_FIELDS))


def decode_bem(data: bytes) -> tuple[str, ...]:
    """BEM: the charger messages the BMS timed out waiting for, as fault tokens."""
    tokens = _fields("BEM", data, BEM_FIELDS)
    other = data[3] >> 2
    if other not in (0, 0x3F):
        tokens.append(BEM_OTHER)
    return tuple(tokens)


def encode_fields(table: tuple[tuple[int, int, str], ...], tokens: tuple[str, ...]) -> bytes:
    """The 4-byte payload with ``tokens`` set (01) and every other field normal (00)."""
    position = {token: (byte, shift) for byte, shift, token in table}
    out = bytearray(4)
    for token in tokens:
        byte, shift = position[token]
        out[byte] |= 1 << shift
    if table is BEM_FIELDS:
        out[3] |= 0xFC  # "other" unused: filled with 1
    return bytes(out)
