"""The simulated pack of the field kit: its label photos, and docking it through a control FIFO.

``echo dock > WORKDIR/control`` puts the pack on the scale and closes the dock switch (the node
simulator gets ``weight 455`` and ``dock 1``); ``undock`` reverses it; any other line goes to
the node simulator as it is (``weight KG``, ``gas LEVEL``, ``unplug``, ...).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import cv2

from edge_agent.errors import SimulatorError

log = logging.getLogger(__name__)

# GB/T 34014 code of the default simulated GB/T pack (CATL "001", NCM, DEFAULT_BRM's serial)
LABEL_CODE = "001PEA3000017NB6F0001234"
PACK_MASS_KG = 455.0  # plausible for the 53.3 kWh of DEFAULT_BRM/BCP
MAX_LINE = 200


def render_pack_labels(folder: Path, *, count: int = 2) -> str:
    """Write ``count`` clean photos of the pack's label and a manifest; returns the code."""
    from edge_agent.sim.label_render import render_label

    try:
        folder.mkdir(parents=True, exist_ok=True)
        manifest = []
        for i in range(count):
            name = f"label-{i:03d}.png"
            image = render_label(LABEL_CODE, "datamatrix", seed=i, degrade=0.0)
            if not cv2.imwrite(str(folder / name), image):
                raise SimulatorError(f"cannot write {folder / name}")
            manifest.append({"file": name, "code": LABEL_CODE, "symbology": "datamatrix"})
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"cannot write label photos to {folder}: {exc}") from None
    return LABEL_CODE


def node_commands(line: str) -> list[str]:
    """Field kit control line -> node simulator commands; SimulatorError on a bad line."""
    words = line.split()
    if not words:
        return []
    if len(line) > MAX_LINE or not line.isprintable():
        raise SimulatorError("control line too long or not printable")
    if words[0] == "dock":
        try:
            kg = float(words[1]) if len(words) > 1 else PACK_MASS_KG
        except ValueError:
            raise SimulatorError(f"dock needs a mass in kg, got {words[1]!r}") from None
        if not 0.0 <= kg <= 5000.0:
            raise SimulatorError(f"dock mass {kg} kg out of range 0..5000")
        return [f"weight {kg:g}", "dock 1"]
    if words[0] == "undock":
        return ["dock 0", "weight 0"]
    return [" ".join(words)]


class ControlFifo:
    """A named pipe whose lines go to ``handle``; a daemon thread reads it until :meth:`close`."""

    def __init__(self, path: Path, handle: Callable[[str], None]) -> None:
        self.path = path
        self._handle = handle
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        try:
            os.mkfifo(path, 0o600)
            # O_RDWR: opening never blocks and the pipe never reports EOF between writers
            self._fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise SimulatorError(f"cannot create control pipe {path}: {exc}") from None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="edge-agent-fieldkit-control", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._closed:
            try:
                chunk = os.read(self._fd, 4096)
            except OSError:
                return
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                if raw == b"\0close":
                    return
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    try:
                        self._handle(text)
                    except SimulatorError as exc:
                        log.warning("field kit control %r refused: %s", text, exc)
            if len(buf) > MAX_LINE * 4:
                buf = b""  # garbage without newlines: drop it

    def close(self) -> None:
        """Stop the reader and remove the pipe."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._fd, b"\0close\n")
        self._thread.join(timeout=5.0)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
