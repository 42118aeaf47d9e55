"""The machine description every benchmark prints beside its numbers."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def memory_gb() -> float | None:
    """Total memory in GB from /proc/meminfo, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average() -> float:
    """One-minute load average (nan where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def describe() -> str:
    """One line: OS, CPU, cores, memory, Python, and the load average now."""
    mem = memory_gb()
    mem_text = f", {mem:.1f} GB RAM" if mem else ""
    return (
        f"{platform.system()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} logical "
        f"cores{mem_text}, Python {platform.python_version()}, load average {load_average():.1f} "
        "(shared machine: timings are noisy)"
    )
