"""Fixtures of the uplink tests (defined in tests/support/mosquitto.py)."""

from tests.support.mosquitto import mosquitto_broker

__all__ = ["mosquitto_broker"]
