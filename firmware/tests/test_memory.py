"""No allocation in the sampling loop (micropython.heap_lock) and a run within a small heap."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from firmware.tests.conftest import APP, HOSTSIM, MpyRun, find_tool, require


def test_sampling_loop_does_not_allocate(mpy: MpyRun) -> None:
    out = mpy(
        """
        import micropython, machine, node, json
        from scripted_tx import ScriptedTx
        from scale import CAL_DEFAULT

        def loop(app, want):
            # locals only: a new module global would grow the globals dict and allocate
            taken = 0
            spins = 0
            while taken < want and spins < 500000:
                spins += 1
                if app.sample():
                    taken += 1
                app.dock.poll()
            return taken

        for adc in ("hx711", "nau7802"):
            cfg = dict(node.CONFIG)
            cfg.update({"wdt_ms": 0, "adc": adc, "sps": 320})
            app = node.App(ScriptedTx(), cfg, dict(CAL_DEFAULT))
            machine.sim.outlier_pm = 30     # glitch codes exercise the rejection path too
            taken = 0
            micropython.heap_lock()
            try:
                taken = loop(app, 200)
            finally:
                micropython.heap_unlock()
            print(json.dumps({"adc": adc, "taken": taken, "stable": app.scale.stable,
                              "samples": app.scale.samples, "rejected": app.scale.rejected}))
        """,
        env={"NODE_SIM_SPS": "2000"},
    ).stdout
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["adc"] for r in rows] == ["hx711", "nau7802"]
    for r in rows:
        assert r["taken"] == 200 and r["stable"] is True
        assert r["samples"] + r["rejected"] == 200 and r["samples"] > 150


def _compile_all(dest: Path) -> list[Path]:
    exe = find_tool("mpy-cross")
    require(exe is not None, "mpy-cross")
    assert exe is not None
    out = []
    for src in sorted(APP.glob("*.py")):
        target = dest / (src.stem + ".mpy")
        proc = subprocess.run([exe, "-o", str(target), str(src)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{src.name}: {proc.stderr}"
        out.append(target)
    return out


def test_mpy_cross_compiles_every_module(tmp_path: Path) -> None:
    mpys = _compile_all(tmp_path)
    names = {p.stem for p in mpys}
    assert {
        "node",
        "node_config",
        "nodeproto",
        "hx711",
        "nau7802",
        "scale",
        "sensors",
        "store",
    } <= names
    assert all(p.read_bytes()[:2] == b"M\x06" for p in mpys)  # .mpy format 6 (v1.23+)


def test_node_runs_in_a_64k_heap_from_mpy(mpy: MpyRun, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    _compile_all(lib)
    proc = mpy(
        """
        import gc, json, machine, node
        from scripted_tx import ScriptedTx
        from scale import CAL_DEFAULT
        tx = ScriptedTx(keep=False)
        tx.cmd(1, "identify", {"s": 0.2}, after_ms=200)
        cfg = dict(node.CONFIG)
        cfg["wdt_ms"] = 0
        app = node.App(tx, cfg, dict(CAL_DEFAULT))
        app.run(run_ms=1500)
        for _ in range(100):  # a loaded machine may need longer for every message type
            if len(tx.types) == 5:
                break
            app.run(run_ms=100)
        gc.collect()
        r = {"types": sorted(tx.types), "alloc": gc.mem_alloc(), "err": app.last_error}
        print(json.dumps(r))
        """,
        heapsize="64K",
        path=f"{HOSTSIM}:{lib}:.frozen",
    )
    r = json.loads(proc.stdout.splitlines()[-1])
    assert r["types"] == ["ack", "hb", "hello", "s", "w"]
    assert r["err"] == "" and r["alloc"] < 56 * 1024  # all of it inside the 64 KiB heap
