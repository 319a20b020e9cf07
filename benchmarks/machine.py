"""What machine a benchmark ran on, for its JSON and BENCHMARKS.md (shared by the bench_* scripts)."""

from __future__ import annotations

import os
import platform


def describe_machine() -> dict:
    """CPU model, cores, Python and torch versions, and the GPU when torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a pinned dependency
        return out
    out["torch"] = torch.__version__
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out
