"""Edge agent for battery-pack identification at recycling sites.

The subpackages are the API; docs/architecture.md maps them and the layers between them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
