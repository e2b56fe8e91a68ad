"""Small strict parsers for udev rules and systemd-networkd files (used by the OS-file tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MATCH_ONLY = {
    "ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
    "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST",
}  # fmt: skip
ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS"}
EITHER = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG"}
WITH_ATTR = {"ATTR", "ATTRS", "ENV", "SYSCTL", "TEST", "IMPORT", "RUN", "SECLABEL", "CONST"}
MATCH_OPS = {"==", "!="}
ASSIGN_OPS = {"=", "+=", "-=", ":="}

_TOKEN = re.compile(
    r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*'
)


class RuleSyntaxError(ValueError):
    """A udev rule or networkd line that udev/systemd would reject or misread."""


@dataclass(frozen=True)
class UdevToken:
    """KEY{attr} op "value"."""

    key: str
    attr: str | None
    op: str
    value: str

    @property
    def is_match(self) -> bool:
        """True for == / != comparisons."""
        return self.op in MATCH_OPS


def parse_udev_rule(line: str, lineno: int = 0) -> list[UdevToken]:
    """One rule line -> tokens; RuleSyntaxError on unknown keys, wrong operators or bad syntax."""
    tokens: list[UdevToken] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:
            raise RuleSyntaxError(
                f"line {lineno}: cannot parse at column {pos}: {line[pos : pos + 30]!r}"
            )
        tok = UdevToken(m["key"], m["attr"], m["op"], m["value"])
        _validate(tok, lineno)
        tokens.append(tok)
        pos = m.end()
        if pos < len(line):
            if line[pos] != ",":
                raise RuleSyntaxError(f"line {lineno}: expected ',' at column {pos}")
            pos += 1
    return tokens


def _validate(tok: UdevToken, lineno: int) -> None:
    known = MATCH_ONLY | ASSIGN_ONLY | EITHER
    if tok.key not in known:
        raise RuleSyntaxError(f"line {lineno}: unknown key {tok.key}")
    if tok.key in MATCH_ONLY and not tok.is_match:
        raise RuleSyntaxError(
            f"line {lineno}: {tok.key} can only be matched (==, !=), not {tok.op}"
        )
    if tok.key in ASSIGN_ONLY and tok.op not in ASSIGN_OPS:
        raise RuleSyntaxError(f"line {lineno}: {tok.key} can only be assigned, not compared")
    if (tok.attr is not None) != (tok.key in WITH_ATTR) and tok.key != "IMPORT":
        raise RuleSyntaxError(
            f"line {lineno}: {tok.key} {'needs' if tok.attr is None else 'takes no'} {{attr}}"
        )
    if tok.key == "MODE" and not re.fullmatch(r"0?[0-7]{3}", tok.value):
        raise RuleSyntaxError(f"line {lineno}: MODE {tok.value!r} is not octal")
    if (
        tok.key == "ATTRS"
        and tok.attr in {"idVendor", "idProduct"}
        and not re.fullmatch(r"[0-9a-f]{4}", tok.value)
    ):
        raise RuleSyntaxError(
            f"line {lineno}: {tok.attr} {tok.value!r} must be 4 lowercase hex digits"
        )


def parse_udev_file(path: Path) -> list[list[UdevToken]]:
    """All rules of a file (comments and blank lines skipped; no line continuations used)."""
    rules = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            raise RuleSyntaxError(f"line {lineno}: keep rules on one line")
        rules.append(parse_udev_rule(line, lineno))
    return rules


NETWORK_KEYS = {
    "Match": {"Name", "Type", "Driver", "MACAddress", "Path", "Property", "Kind"},
    "Link": {"RequiredForOnline", "ActivationPolicy", "MTUBytes"},
    "CAN": {
        "BitRate", "SamplePoint", "TimeQuantaNSec", "DataBitRate", "DataSamplePoint", "FDMode",
        "FDNonISO", "RestartSec", "Termination", "TripleSampling", "BusErrorReporting",
        "ListenOnly", "Loopback", "OneShot", "PresumeAck", "ClassicDataLengthCode",
    },
}  # fmt: skip


def parse_networkd(path: Path) -> dict[str, dict[str, str]]:
    """Sections -> keys of a .network file; RuleSyntaxError on unknown sections/keys or repeats."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    name = ""
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise RuleSyntaxError(f"line {lineno}: bad section header {line!r}")
            name = line[1:-1]
            if name not in NETWORK_KEYS:
                raise RuleSyntaxError(f"line {lineno}: unknown section [{name}]")
            current = sections.setdefault(name, {})
            continue
        if current is None or "=" not in line:
            raise RuleSyntaxError(f"line {lineno}: expected Key=Value inside a section")
        key, _, value = line.partition("=")
        key = key.strip()
        if key not in NETWORK_KEYS[name]:
            raise RuleSyntaxError(f"line {lineno}: unknown key {key} in [{name}]")
        if key in current:
            raise RuleSyntaxError(f"line {lineno}: {key} repeated in [{name}]")
        current[key] = value.strip()
    return sections


def parse_bitrate(text: str) -> int:
    """networkd BitRate= value (base 1000 suffixes K, M) in bit/s."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)", text)
    if m is None:
        raise RuleSyntaxError(f"bad bitrate {text!r}")
    factor = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3}[m[2]]
    return round(float(m[1]) * factor)


def parse_timespan_ms(text: str) -> float:
    """systemd time span ('100ms', '1s', '2min') in milliseconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(us|ms|s|sec|min|)", text)
    if m is None:
        raise RuleSyntaxError(f"bad time span {text!r}")
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0, "sec": 1000.0, "min": 60000.0, "": 1000.0}[m[2]]
    return float(m[1]) * factor
