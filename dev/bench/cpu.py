"""Who used the CPU during a benchmark run: the S3 API, PostgreSQL, the whole machine.

A load is three programs sharing the cores: the loading process, the local S3 API and
the PostgreSQL backend taking its COPY. The benchmark reads each one's CPU time (psutil)
before and after a run, and the machine's busy share, to tell a load bound by its own
Python (one core, the GIL) from one bound by the machine (every core busy).
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


def process_cpu_seconds(pid: int, reaped_children: bool = False) -> float | None:
    """CPU time (user + system) of process ``pid``; None when it is gone or unreadable.

    :param pid: the process.
    :param reaped_children: add the CPU time of its children that have ended and been
        waited for: a PostgreSQL backend's time lands in the postmaster's once its
        connection has closed.
    """
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    seconds = times.user + times.system
    if reaped_children:
        seconds += times.children_user + times.children_system
    return seconds


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of ``pid``, of its live children and of the children it has reaped: a
    PostgreSQL server's whole use (backends, background workers, backends that ended).

    :param pid: the tree's root (the postmaster).
    """
    own = process_cpu_seconds(pid, reaped_children=True)
    if own is None:
        return None
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return None
    return own + sum(process_cpu_seconds(child.pid) or 0.0 for child in children)


@dataclass(frozen=True)
class MachineCpu:
    """The machine's CPU time so far, all cores: busy and in total, in seconds."""

    busy: float
    total: float

    @classmethod
    def read(cls) -> MachineCpu:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        # guest time is counted inside user already (Linux): leave it out of the sum
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        return cls(busy=total - idle, total=total)

    def busy_share_since(self, before: MachineCpu) -> float | None:
        """The share of all cores' time that was busy since ``before`` (0-1).

        :param before: the earlier reading.
        """
        total = self.total - before.total
        return (self.busy - before.busy) / total if total > 0 else None
