"""Sliding replay window per key over (boot_epoch, seq), after RFC 8613 section 7.4."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplayWindow:
    """State of one sender: the newest (epoch, seq) seen and a bitmap of the ``size`` below it.

    Bit ``i`` of ``bitmap`` set means ``top - i`` was already accepted (bit 0 is ``top``).
    A fresh key has ``epoch = -1`` so that any first message is accepted.
    """

    epoch: int = -1
    top: int = -1
    bitmap: int = 0

    def check(self, epoch: int, seq: int, size: int) -> tuple[bool, str]:
        """``(True, "")`` when (epoch, seq) is fresh, else ``(False, reason)`` (never raises)."""
        if epoch > self.epoch:
            return True, ""
        if epoch < self.epoch:
            return False, "stale_epoch"
        if seq > self.top:
            return True, ""
        age = self.top - seq
        if age >= size:
            return False, "outside_window"
        if self.bitmap >> age & 1:
            return False, "replayed"
        return True, ""

    def accept(self, epoch: int, seq: int, size: int) -> ReplayWindow:
        """The window after accepting (epoch, seq); call only after ``check`` said fresh."""
        mask = (1 << size) - 1
        if epoch > self.epoch:
            # A new boot restarts the per-boot sequence: forget the old epoch entirely.
            return ReplayWindow(epoch, seq, 1)
        if seq > self.top:
            shift = seq - self.top
            bitmap = ((self.bitmap << shift) | 1) & mask if shift < size else 1
            return ReplayWindow(epoch, seq, bitmap)
        return ReplayWindow(epoch, self.top, (self.bitmap | 1 << (self.top - seq)) & mask)
