"""Power-fail tolerant JSON files: write to a temp file, keep the previous copy, then rename."""

import binascii
import json
import os


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def save(path, obj):
    """Persist ``obj`` with a CRC; the previous version is kept as ``path + '.bak'``."""
    body = json.dumps(obj)
    data = json.dumps({"crc": binascii.crc32(body.encode()) & 0xFFFFFFFF, "body": body})
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    if _exists(path):
        try:
            os.remove(path + ".bak")
        except OSError:
            pass
        os.rename(path, path + ".bak")
    os.rename(tmp, path)


def _load_one(path):
    with open(path) as f:
        outer = json.loads(f.read())
    body = outer["body"]
    if binascii.crc32(body.encode()) & 0xFFFFFFFF != outer["crc"]:
        raise ValueError("crc")
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise ValueError("type")
    return obj


def load(path, default):
    """Load ``path`` (falling back to its backup); ``default`` when neither is valid."""
    for p in (path, path + ".bak"):
        try:
            return _load_one(p)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return default
