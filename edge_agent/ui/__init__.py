"""The technician's kiosk page served by ``edge-agent run`` (aiohttp, server-rendered, SSE).

Modules: ``settings`` (the ``[ui]`` section), ``i18n`` (gettext catalogs, en and zh-CN),
``bench`` (what the page shows: station state, source progress, today's packs), ``journal``
(today's packs on disk, read back by offset), ``delivery`` (an event's delivery state),
``views`` (station data -> what a template shows, health lines included), ``words`` (the
page's words and their translations), ``security`` (PIN, CSRF, origin checks), ``server``
(routes and the attachment that ``run`` starts).
"""

__all__ = [
    "bench",
    "delivery",
    "i18n",
    "journal",
    "security",
    "server",
    "settings",
    "views",
    "words",
]
