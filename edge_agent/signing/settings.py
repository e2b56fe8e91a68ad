"""Config section of event signing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.dataform import bounded


@dataclass(frozen=True, kw_only=True)
class SigningSettings:
    """Where the station key lives and which COSE algorithm ids to emit."""

    key_dir: Path = field(
        default_factory=lambda: Path("~/.local/share/edge-agent/keys").expanduser()
    )
    alg: Literal["ed25519", "p256"] = "ed25519"
    # Emit EdDSA (-8) / ES256 (-7) instead of RFC 9864's Ed25519 (-19) / ESP256 (-9).
    legacy_alg_ids: bool = False
    # `keys rotate`: how long the gateway keeps accepting the old key after it accepted the
    # rotation (events signed just before it, events re-sent from the outbox)
    rotation_overlap_s: int = bounded(0, 366 * 86400, default=7 * 86400)
