"""glibc malloc settings that keep a long-running agent's memory close to what it uses.

OCR allocates tens of megabytes of activations per image from onnxruntime's worker threads.
With glibc defaults each thread may get its own arena (up to 8 per core) and the mmap threshold
grows to 32 MB after the first large free, so those buffers end up in arenas that are seldom
given back: the resident size climbs with every reading. ``tune_malloc`` (once, at process
start) caps the arenas and fixes the thresholds; ``release_free_memory`` (after an OCR reading)
returns free pages. Both are no-ops off glibc (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import threading

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENA_MAX = 2
# allocations above 4 MiB are mapped and unmapped on free (1 MiB measured slower: page faults)
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 4 << 20  # the heap top is given back beyond 4 MiB free
DISABLE_ENV = "EDGE_AGENT_MALLOC_TUNING"  # "0" leaves glibc's defaults

_done = threading.Lock()
_tuned: list[bool] = []


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc() -> bool:
    """Cap malloc arenas and fix the mmap/trim thresholds (once); False when not applied."""
    with _done:
        if _tuned:
            return _tuned[0]
        libc = None if os.environ.get(DISABLE_ENV) == "0" else _glibc()
        ok = libc is not None and all(
            libc.mallopt(param, value) == 1
            for param, value in (
                (M_ARENA_MAX, ARENA_MAX),
                (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            )
        )
        _tuned.append(ok)
        return ok


def release_free_memory() -> bool:
    """Give free heap pages back to the system (``malloc_trim``); False off glibc."""
    libc = _glibc()
    if libc is None or os.environ.get(DISABLE_ENV) == "0":
        return False
    libc.malloc_trim(0)
    return True
