"""Gateway fixtures (defined in tests/support/gateway.py): pki, rig (site + upstream brokers,
simulated stations, trust store) and recorder (upstream subscriber); amqtt_broker (an MQTT
3.1.1-only broker, tests/support/amqtt.py)."""

from tests.support.amqtt import amqtt_broker  # noqa: F401
from tests.support.gateway import pki, recorder, rig  # noqa: F401
