"""Gateway fixtures (defined in tests/support/gateway.py): pki, rig (site + upstream brokers,
simulated stations, trust store) and recorder (upstream subscriber)."""

from tests.support.gateway import pki, recorder, rig  # noqa: F401
