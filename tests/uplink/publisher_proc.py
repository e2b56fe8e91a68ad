"""Publisher process for the SIGKILL fault test: store events, publish them, print progress.

``python -m tests.uplink.publisher_proc --db D --port P --prefix K --count N`` stores N events
(printing ``C <key>`` after each commit), publishes, waits until the outbox is empty, prints
``IDLE`` and exits. ``--count 0`` only drains what an earlier (killed) run left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.uplink.mqtt import status_messages
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings
from edge_agent.uplink.topics import StationTopics


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--status", action="store_true", help="birth message + Last Will")
    args = parser.parse_args()
    topics = StationTopics("site-1", "bench-1")
    outbox = Outbox(args.db)
    settings = MqttSettings(
        host=args.host, port=args.port, reconnect_min_s=0.05, reconnect_max_s=0.5
    )
    client_id = f"proc-{args.prefix}"
    status = status_messages(topics.status, client_id) if args.status else None
    pub = OutboxPublisher(outbox, settings, client_id=client_id, status=status)
    pub.start()
    for start in range(0, args.count, args.batch):
        keys = [f"{args.prefix}-{i}" for i in range(start, min(args.count, start + args.batch))]
        pub.enqueue([OutboxMessage(topics.event, f"{k}|".encode() + b"e" * 900, k) for k in keys])
        sys.stdout.write("".join(f"C {k}\n" for k in keys))
        sys.stdout.flush()
    ok = pub.wait_idle(args.timeout)
    pub.stop()
    outbox.close()
    print("IDLE" if ok else "TIMEOUT", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
