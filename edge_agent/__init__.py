"""Edge agent for battery-pack identification at recycling sites."""

__version__ = "0.1.0"
