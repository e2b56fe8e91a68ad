"""When to send a row again: back-off after a refusal, and flights given up without PUBACK."""

from __future__ import annotations

from edge_agent.uplink.send_window import Flight, SendWindow


class Backoff:
    """Exponential back-off of a row the broker refused: ``min_s * 2**attempts``, capped."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = min_s
        self.max_s = max_s

    def delay(self, attempts: int) -> float:
        """Seconds until a row refused after ``attempts`` sends is due again."""
        return min(self.max_s, self.min_s * float(2 ** min(attempts, 20)))


class AckExpiry:
    """A flight without PUBACK for ``timeout_s`` while connected is given up (sent again)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.connected_since = 0.0  # monotonic: a flight's clock starts at the later of both
        self._next_check = 0.0

    def expire(self, window: SendWindow, now: float) -> list[Flight]:
        """Remove the stale flights from ``window``; looks at most a few times per timeout."""
        # Scanning every flight on every step cost O(window) per PUBACK; a flight is stale only
        # after timeout_s, so looking a few times per timeout is just as good.
        if now < self._next_check:
            return []
        limit = self.timeout_s
        self._next_check = now + min(1.0, limit / 4)
        since = self.connected_since
        return window.give_up(lambda f: now - max(f.sent, since) > limit)
