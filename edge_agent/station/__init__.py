"""The bench station: one identification (workflow, reconcile, triage, event assembly), the
agent that owns every part, the ``edge-agent run`` service and its control socket.

Public modules: ``agent`` (``StationAgent``), ``service`` (``run_service``), ``control``,
``workflow`` (``IdentificationWorkflow``), ``settings`` (incl. the ``StationConfig``
protocol), ``view``, ``reconcile``, ``triage``, ``boot``, ``chemistry``.
"""

# public modules; importing the package imports none of them
__all__ = [
    "agent",
    "boot",
    "chemistry",
    "control",
    "reconcile",
    "service",
    "settings",
    "triage",
    "view",
    "workflow",
]
