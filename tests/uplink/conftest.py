"""Fixtures of the uplink tests (defined in tests/support/mosquitto.py and amqtt.py)."""

from tests.support.amqtt import amqtt_broker
from tests.support.mosquitto import mosquitto_broker

__all__ = ["amqtt_broker", "mosquitto_broker"]
