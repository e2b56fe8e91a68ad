"""Sign the example events in schemas/examples/ with a (new or given) station key.

    python schemas/sign_examples.py --out build/signed-examples [--key-dir DIR] [--alg p256]

Writes NAME.cose (raw COSE_Sign1) and NAME.cose.hex per example; the kid in each body is set to
the signing key's kid. Verify one with ``edge-agent verify OUT/NAME.cose --trust
OUT/keys/station.pub.pem``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from edge_agent.errors import EdgeAgentError
from edge_agent.event_codec import event_from_plain
from edge_agent.signing.events import sign_event
from edge_agent.signing.keys import PRIVATE_KEY_FILE, init_keys, load_signer

EXAMPLES = Path(__file__).resolve().parent / "examples"


def main(argv: list[str] | None = None) -> int:
    """Sign every example; exit 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--key-dir", type=Path, default=None, help="default: OUT/keys (created)")
    parser.add_argument("--alg", choices=["ed25519", "p256"], default="ed25519")
    args = parser.parse_args(argv)
    key_dir = args.key_dir or args.out / "keys"
    try:
        if not (key_dir / PRIVATE_KEY_FILE).exists():
            init_keys(key_dir, args.alg)
        # the same checks as the agent: a key others may read (0644) is refused, not used
        signer = load_signer(key_dir)
    except EdgeAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(EXAMPLES.glob("*.json")):
        event = event_from_plain(json.loads(path.read_text(encoding="utf-8")))
        message = sign_event(dataclasses.replace(event, kid=signer.kid.hex()), signer)
        (args.out / f"{path.stem}.cose").write_bytes(message)
        (args.out / f"{path.stem}.cose.hex").write_text(message.hex() + "\n", encoding="ascii")
        print(f"{path.stem}.cose  {len(message)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
