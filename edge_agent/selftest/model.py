"""Plain data of the self-test: verdicts, check outcomes, the context checks run in."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edge_agent.bms.settings import BmsSettings
from edge_agent.nodes.settings import NodeSettings
from edge_agent.signing.settings import SigningSettings
from edge_agent.station.settings import StationSettings
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.vision.settings import LabelSettings


class SelftestConfig(Protocol):
    """The config sections the checks read; ``AgentConfig`` satisfies it structurally.

    The self-test does not import ``edge_agent.config`` (only commands/ does): the command
    passes its ``AgentConfig`` here.
    """

    @property
    def station(self) -> StationSettings: ...
    @property
    def signing(self) -> SigningSettings: ...
    @property
    def bms(self) -> BmsSettings: ...
    @property
    def label(self) -> LabelSettings: ...
    @property
    def nodes(self) -> NodeSettings: ...
    @property
    def uplink(self) -> UplinkSettings: ...


class Verdict(enum.StrEnum):
    """PASS works; WARN works with a caveat; FAIL broken; SKIP not configured."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one check found: a verdict, what was seen, and the concrete next step."""

    verdict: Verdict
    detail: str
    next_step: str = ""
    # A check may report several lines (CAN: link, then frames); `line` names the sub-line.
    line: str = ""
    # None: the check's registered required-rule decides; True/False overrides it per line.
    required: bool | None = None


def passed(detail: str, *, line: str = "") -> Outcome:
    """A PASS outcome."""
    return Outcome(verdict=Verdict.PASS, detail=detail, line=line)


def failed(detail: str, next_step: str, *, line: str = "") -> Outcome:
    """A FAIL outcome with the next step the user should take."""
    return Outcome(verdict=Verdict.FAIL, detail=detail, next_step=next_step, line=line)


def warned(detail: str, next_step: str, *, line: str = "", required: bool | None = None) -> Outcome:
    """A WARN outcome with the next step the user should take."""
    return Outcome(
        verdict=Verdict.WARN, detail=detail, next_step=next_step, line=line, required=required
    )


def skipped(detail: str, *, line: str = "") -> Outcome:
    """A SKIP outcome: the part is not configured."""
    return Outcome(verdict=Verdict.SKIP, detail=detail, line=line)


IpLinkProvider = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True, kw_only=True)
class CheckContext:
    """Everything a check may look at. Roots and providers are injectable for tests."""

    config: SelftestConfig
    sysfs_root: Path = Path("/sys")
    run_root: Path = Path("/run")
    # `ip -details -json link show dev X` as parsed JSON (one link object), None if unknown.
    ip_link: IpLinkProvider | None = None
    frame_window_s: float = 2.0
    # Holding register the Modbus check reads; None: SunSpec base (40000) or 0 from the profile.
    modbus_register: int | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One printed line of the self-test."""

    name: str
    title: str
    verdict: Verdict
    required: bool
    detail: str
    next_step: str
    elapsed_s: float

    @property
    def blocks(self) -> bool:
        """True when this line makes the self-test fail (a required check that FAILed)."""
        return self.required and self.verdict is Verdict.FAIL

    def as_plain(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "title": self.title,
            "verdict": self.verdict.value,
            "required": self.required,
            "detail": self.detail,
            "next_step": self.next_step,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True, kw_only=True)
class Report:
    """All lines of one self-test run."""

    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when no required check failed."""
        return not any(r.blocks for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every required check passed, else 1."""
        return 0 if self.ok else 1

    def result(self, name: str) -> CheckResult:
        """The line with this name; KeyError if absent."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def as_plain(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "checks": [r.as_plain() for r in self.results],
        }
