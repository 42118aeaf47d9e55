"""Background jobs (training runs) on worker threads, with state, progress and errors kept.

A job is a function taking a progress callback ``(fraction, message)`` and returning a JSON-safe
result. The manager runs it on its own thread, records ``queued -> running -> succeeded|failed``,
and keeps the error message of a failure (``"<ExceptionClass>: <message>"``): a failed job is
never reported as anything else. A failure on the input (the package's own errors,
:class:`retail_clv.errors.RetailClvError`, e.g. not enough history) is logged as a warning with
its message; anything else is a bug and is logged as an error with its traceback. At most one
job of an exclusive kind runs at a time (:class:`JobConflictError`, answered with 409).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from retail_clv.errors import RetailClvError

logger = logging.getLogger(__name__)

JobState = Literal["queued", "running", "succeeded", "failed"]
ProgressFn = Callable[[float, str], None]
JobWork = Callable[[ProgressFn], dict[str, Any] | None]


class JobConflictError(Exception):
    """A job of the same exclusive kind is already queued or running."""

    def __init__(self, running: Job) -> None:
        super().__init__(
            f"A {running.kind} job is already {running.state} (job id {running.job_id}); "
            "wait for it to finish"
        )
        self.running = running


@dataclass
class Job:
    """One background job and everything known about it."""

    job_id: str
    kind: str
    state: JobState = "queued"
    progress: float = 0.0
    message: str = "queued"
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe view served by ``GET /jobs/{job_id}``."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": self.state,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
            "result": self.result,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class JobManager:
    """Run jobs on daemon threads and remember the most recent ones.

    Parameters
    ----------
    max_history
        How many finished jobs are kept for ``GET /jobs/{id}`` (oldest forgotten first).
    """

    def __init__(self, max_history: int = 100) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._max_history = max_history

    def submit(self, kind: str, work: JobWork, *, exclusive: bool = True) -> Job:
        """Start ``work`` on a new thread and return its job record.

        Parameters
        ----------
        kind
            Job kind, e.g. ``"train"``.
        work
            The function to run; it receives a progress callback and returns the job result.
        exclusive
            Refuse to start while another job of the same kind is queued or running.

        Returns
        -------
        Job
            The new job (state ``queued`` or already ``running``).

        Raises
        ------
        JobConflictError
            When ``exclusive`` and a job of this kind is active.
        """
        with self._lock:
            if exclusive:
                for job in self._jobs.values():
                    if job.kind == kind and job.state in ("queued", "running"):
                        raise JobConflictError(job)
            job = Job(job_id=uuid.uuid4().hex, kind=kind)
            self._jobs[job.job_id] = job
            self._forget_old()
            thread = threading.Thread(
                target=self._run, args=(job, work), name=f"clv-job-{kind}-{job.job_id[:8]}"
            )
            thread.daemon = True
            self._threads[job.job_id] = thread
        thread.start()
        return job

    def get(self, job_id: str) -> Job | None:
        """Return the job with this id, or ``None`` when unknown or forgotten."""
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Return every remembered job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job's thread ends (or ``timeout`` seconds pass); return the job."""
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(job_id)

    def shutdown(self, timeout: float = 0.0) -> None:
        """Wait up to ``timeout`` seconds for running jobs (threads are daemons)."""
        for thread in list(self._threads.values()):
            if thread.is_alive():
                thread.join(timeout)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in ("succeeded", "failed")]
        for job in finished[: max(0, len(self._jobs) - self._max_history)]:
            self._jobs.pop(job.job_id, None)
            self._threads.pop(job.job_id, None)

    def _run(self, job: Job, work: JobWork) -> None:
        def progress(fraction: float, message: str) -> None:
            with self._lock:
                job.progress = min(1.0, max(0.0, float(fraction)))
                job.message = str(message)

        with self._lock:
            job.state = "running"
            job.message = "running"
            job.started_at = datetime.now(UTC)
        logger.info("job %s (%s) started", job.job_id, job.kind)
        try:
            result = work(progress)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the job record
            if isinstance(exc, RetailClvError):  # the input's fault, told to the client
                logger.warning(
                    "job %s (%s) failed: %s: %s", job.job_id, job.kind, type(exc).__name__, exc
                )
            else:
                logger.exception("job %s (%s) failed", job.job_id, job.kind)
            with self._lock:
                job.state = "failed"
                # an unexpected error's text may name server paths: it stays in the server log
                job.error = (
                    f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, RetailClvError)
                    else f"{type(exc).__name__}: internal error; the server log has the details "
                    f"(job {job.job_id})"
                )
                job.message = "failed"
                job.finished_at = datetime.now(UTC)
            if not isinstance(exc, Exception):
                raise
            return
        with self._lock:
            job.state = "succeeded"
            job.progress = 1.0
            job.message = "done"
            job.result = result
            job.finished_at = datetime.now(UTC)
        logger.info("job %s (%s) succeeded", job.job_id, job.kind)
