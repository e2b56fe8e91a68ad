"""Bench baseline (never shipped): a raw line echo over the same stdio/pty path as the node.

``mem`` answers with the heap in use after a collection; ``flood N`` writes N framed lines
as fast as the stream takes them; any other line is echoed back unchanged.
"""

import gc
import sys

import micropython
import nodeproto

micropython.kbd_intr(-1)
out = sys.stdout.buffer
inp = sys.stdin.buffer
while True:
    line = inp.readline()
    if not line:
        break
    if line.startswith(b"mem"):
        gc.collect()
        out.write(b"mem %d\n" % gc.mem_alloc())
    elif line.startswith(b"flood"):
        n = int(line.split()[1])
        payload = b'{"v": 1, "t": "w", "net_g": 312500, "stable": true, "seq": 0}'
        framed = nodeproto.frame(payload)
        for _ in range(n):
            out.write(framed)
        out.write(b"done\n")
    else:
        out.write(line)
