"""Keeps glibc's malloc from handing torch's large buffers back to the kernel.

torch frees and allocates its activation buffers again at every step. Blocks above glibc's
mmap threshold (at most 32 MiB by default) are unmapped when freed, and the next allocation
faults every page in again. On the 2-core build VM that made one 192-px training step of
MobileNetV2-b10 (batch 32) take 11-18 s instead of 0.9 s (docs/training.md, 4 Dec 2026). The
tunables must be in the environment before the interpreter starts, so the tool runs itself
again with them.
"""
import os
import sys

TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"
MARK = "CXR_TOOLS_HEAP_SET"


def keep_freed_memory():
    """Re-executes the running script with the tunables set (once; a no-op afterwards)."""
    if os.environ.get(MARK):
        return
    env = dict(os.environ, **{MARK: "1"})
    earlier = env.get("GLIBC_TUNABLES")
    env["GLIBC_TUNABLES"] = TUNABLES if not earlier else earlier + ":" + TUNABLES
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)
