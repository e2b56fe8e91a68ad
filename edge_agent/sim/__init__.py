"""Simulators used by tests, the demo and field kits."""
