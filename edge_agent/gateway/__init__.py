"""Site gateway: admission of signed station events, evidence matching, forwarding upstream.

Public modules: ``service`` (``edge-agent gateway run``) and ``settings``.
"""

# public modules; importing the package imports none of them
__all__ = [
    "service",
    "settings",
]
