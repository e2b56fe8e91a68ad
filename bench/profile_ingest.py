"""Where one ingest worker's CPU goes: py-spy on a worker draining N queued events.

Starts Mosquitto and PostgreSQL like ``bench_ingest.py``, one ``edge-agent ingest`` worker,
queues N signed events while it is frozen, samples it with py-spy (``pip install py-spy``)
from SIGCONT until all N are stored, and prints the worker's CPU per event (/proc) and the
samples of each part in units of the Ed25519 verification (``verify_signature``): a fixed
cost per event, so the ratios compare two trees on a busy machine where absolute times do not.

    python bench/profile_ingest.py [N] [--top K] [--raw FILE]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import _cpu_s, count, make_events, publish  # noqa: E402

from edge_agent.ingest.db import Database  # noqa: E402
from edge_agent.signing.keys import init_keys  # noqa: E402
from tests.support.ingest import IngestProcess, ingest_config_file, ingest_settings  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402
from tests.support.postgres import PostgresServer, pg_bin  # noqa: E402

# part -> the frames that mark it (decode_body: decode_event's body since ingest-cpu)
PARTS = {
    "verify_signature (Ed25519, OpenSSL)": ("verify_signature (",),
    "decode_event (CBOR + v1 model)": ("decode_event (", "decode_body ("),
    "event_row (columns + body JSON)": ("event_row (",),
    "store (database)": ("EventStore.store",),
    "receipts": ("publish_receipts (",),
}


def sample(n: int, raw: Path) -> float:
    """py-spy samples of one worker storing ``n`` events into ``raw``; its CPU us per event."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="profile-ingest-") as tmp:
        work = Path(tmp)
        init_keys(work / "ingest-key", "ed25519")
        items, _ = make_events(work, n)
        broker = MosquittoBroker(work / "broker", extra_conf="max_inflight_messages 100\n")
        broker.start()
        pg = PostgresServer(pg_bin())  # type: ignore[arg-type]
        pg.start()
        try:
            url = pg.new_database()
            with Database(url) as db:
                db.migrate()
            base = ingest_settings(
                work, broker, url, share_group="p", receipt_key_dir=str(work / "ingest-key")
            )
            settings = replace(base, mqtt=replace(base.mqtt, client_id="profile-1"))
            worker = IngestProcess(ingest_config_file(work / "w.toml", settings), work / "w.log")
            worker.start()
            assert worker.proc is not None
            end = time.monotonic() + 60
            while not (worker.log.exists() and "connected to" in worker.log.read_text()):
                if time.monotonic() > end:
                    raise RuntimeError("the worker did not connect")
                time.sleep(0.05)
            time.sleep(0.3)
            os.kill(worker.proc.pid, signal.SIGSTOP)
            publish(broker.port, items)
            args = ["record", "--pid", str(worker.proc.pid), "--format", "raw", "-o", str(raw)]
            spy_proc = subprocess.Popen(
                [spy, *args, "--rate", "250", "--threads", "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            cpu0 = _cpu_s(worker)
            os.kill(worker.proc.pid, signal.SIGCONT)
            while count(url) < n:
                time.sleep(0.02)
            cpu_us = (_cpu_s(worker) - cpu0) / n * 1e6
            spy_proc.send_signal(signal.SIGINT)
            spy_proc.wait(60)
            worker.stop()
        finally:
            pg.stop()
            broker.kill()
    return cpu_us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=int, nargs="?", default=10_000)
    parser.add_argument("--top", type=int, default=25, help="functions listed by own samples")
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's raw stacks here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw or Path(tmp) / "stacks.txt"
        cpu_us = sample(args.events, raw)
        lines = raw.read_text().splitlines()
    total = 0
    parts: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, counted = line.rpartition(" ")
        frames = stack.split(";")
        if "MainThread" in frames[0]:
            continue
        n = int(counted)
        total += n
        if "paho-mqtt-client" in frames[0]:
            parts["paho thread (MQTT receive, acks)"] += n
        for name, markers in PARTS.items():
            if any(marker in stack for marker in markers):
                parts[name] += n
        own[re.sub(r":\d+\)", ")", frames[-1])] += n
    verify = parts["verify_signature (Ed25519, OpenSSL)"] or 1
    print(f"one worker, {args.events} events: CPU {cpu_us:.1f} us/event (/proc)")
    print(f"{'part':<44}{'share':>8}{'x verify':>10}")
    print(f"{'all worker threads':<44}{1:>8.0%}{total / verify:>10.2f}")
    for name, n in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<42}{n / total:>8.0%}{n / verify:>10.2f}")
    print(f"own samples, top {args.top}:")
    for name, n in own.most_common(args.top):
        print(f"  {n / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
