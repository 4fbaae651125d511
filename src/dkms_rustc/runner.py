"""Run a program safely: no shell, a fixed minimal environment, a timeout, a cap on output.

Every process this tool starts goes through :func:`run`. The program is an absolute path to
a file that :mod:`dkms_rustc.trust` accepted; nothing is looked up on PATH, and nothing from
the caller's environment (RUSTUP_TOOLCHAIN, RUSTFLAGS, LD_PRELOAD, ...) reaches it.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

# typing, subprocess, selectors and signal cost milliseconds to import: they are imported when
# a program is actually run (a warm run runs none), typing only by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Sequence

MINIMAL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TIMEOUT = 5.0
DEFAULT_OUTPUT_CAP = 256 * 1024

# Counted so that benchmarks and tests can assert how many processes a run started.
processes_started = 0


@dataclass(frozen=True)
class RunResult:
    """What a program did: its exit status and output, or why it did not finish."""

    argv: tuple[str, ...]
    returncode: int | None  # None when the program did not finish
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    start_error: str | None = None  # the OS error when the program could not be started

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.truncated

    def failure(self) -> str:
        """One line saying why the run did not succeed (empty when it did)."""
        name = self.argv[0]
        if self.start_error:
            return f"{name} could not be started: {self.start_error}"
        if self.timed_out:
            return f"{name} did not finish in time and was stopped"
        if self.truncated:
            return f"{name} printed more output than expected and was stopped"
        if self.returncode is not None and self.returncode < 0:
            import signal  # its enums cost an import; only a crash report needs the name

            try:
                signame = signal.Signals(-self.returncode).name
            except ValueError:
                signame = f"signal {-self.returncode}"
            return f"{name} crashed ({signame})"
        if self.returncode:
            return f"{name} failed with exit status {self.returncode}"
        return ""


class Deadline:
    """A time budget shared by all probes of one run, so that hanging programs cannot add up."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self, cap: float) -> float:
        return max(0.0, min(cap, self.end - time.monotonic()))


def minimal_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"LC_ALL": "C", "PATH": MINIMAL_PATH, "HOME": "/nonexistent"}
    if extra:
        env.update(extra)
    return env


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


MAX_PARALLEL = 64  # processes run at once by run_many; more wait for a free slot
_KILL_GRACE = 1.0  # seconds to wait, in all, for killed programs to be reaped


class _Job:
    """One program run_many started: its process and the output read so far.

    A plain class: a dataclass costs a millisecond at import, on every (warm) run."""

    __slots__ = ("argv", "chunks", "index", "open_streams", "process", "total", "truncated")

    def __init__(self, index: int, argv: tuple[str, ...], process: subprocess.Popen[bytes]) -> None:
        self.index = index
        self.argv = argv
        self.process = process
        self.chunks: dict[int, list[bytes]] = {1: [], 2: []}
        self.total = 0
        self.open_streams = 2
        self.truncated = False

    def result(self, returncode: int | None, cap: int, timed_out: bool = False) -> RunResult:
        return RunResult(
            self.argv,
            None if timed_out else returncode,
            _decode(b"".join(self.chunks[1])[:cap]),
            _decode(b"".join(self.chunks[2])[:cap]),
            timed_out=timed_out,
            truncated=self.truncated,
        )


def run(
    argv: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> RunResult:
    """Run ``argv`` (argv[0] an absolute path) and collect its output within the limits."""
    return run_many([argv], timeout=timeout, output_cap=output_cap, env=env, cwd=cwd)[0]


def run_many(
    argvs: Sequence[list[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    max_parallel: int = MAX_PARALLEL,
) -> list[RunResult]:
    """Run every ``argv`` at the same time, all within one ``timeout``; results in order.

    Hanging programs therefore cost one timeout together, not one each. Each program runs
    in a new session (so a timeout stops its children too), with stdin from /dev/null, the
    minimal environment unless ``env`` is given, in ``cwd`` (default ``/``, so nothing is
    looked up relative to the directory the tool was started in), and each one's output is
    capped at ``output_cap`` bytes: more, and it is stopped.
    """
    import selectors
    import subprocess
    from collections import deque

    for argv in argvs:
        if not argv or not os.path.isabs(argv[0]):
            raise ValueError(f"refusing to run {argv[0] if argv else argv!r}: not an absolute path")
    results: list[RunResult | None] = [None] * len(argvs)
    pending = deque(range(len(argvs)))
    running: dict[int, _Job] = {}
    exiting: dict[int, _Job] = {}  # output complete, waiting for the process to exit
    deadline = time.monotonic() + timeout
    environment = env if env is not None else minimal_environment()
    with selectors.DefaultSelector() as selector:

        def start(index: int) -> None:
            global processes_started
            argv = argvs[index]
            try:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=environment,
                    cwd=cwd if cwd is not None else "/",
                    close_fds=True,
                    start_new_session=True,  # so a timeout can stop the program and its children
                )
            except (OSError, ValueError) as error:
                message = (error.strerror if isinstance(error, OSError) else None) or str(error)
                results[index] = RunResult(tuple(argv), None, "", "", start_error=message)
                return
            processes_started += 1
            job = _Job(index, tuple(argv), process)
            running[index] = job
            assert process.stdout is not None and process.stderr is not None
            selector.register(process.stdout, selectors.EVENT_READ, (job, 1))
            selector.register(process.stderr, selectors.EVENT_READ, (job, 2))

        def close(job: _Job) -> None:
            for stream in (job.process.stdout, job.process.stderr):
                assert stream is not None
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(stream)
                stream.close()
            running.pop(job.index, None)

        while pending or running or exiting:
            while pending and len(running) + len(exiting) < max_parallel:
                start(pending.popleft())
            for index, job in list(exiting.items()):
                returncode = job.process.poll()
                if returncode is not None:
                    del exiting[index]
                    results[index] = job.result(returncode, output_cap)
            if not running and not exiting:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(remaining, 0.01) if exiting else remaining
            for key, _ in selector.select(wait):
                job, which = key.data
                if job.index not in running:
                    continue  # stopped for its output while this event waited
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    job.open_streams -= 1
                else:
                    job.chunks[which].append(data)
                    job.total += len(data)
                    if job.total > output_cap:
                        job.truncated = True
                        _kill_group(job.process)
                        job.open_streams = 0
                if job.open_streams == 0 and job.index in running:
                    close(job)
                    exiting[job.index] = job
        # Time is up: stop whatever still runs (and everything it started).
        stopped = [*running.values(), *exiting.values()]
        for job in stopped:
            _kill_group(job.process)
        for job in list(running.values()):
            close(job)
    reap_by = time.monotonic() + _KILL_GRACE
    for job in stopped:
        with contextlib.suppress(subprocess.TimeoutExpired):
            job.process.wait(timeout=max(0.0, reap_by - time.monotonic()))
        results[job.index] = job.result(None, output_cap, timed_out=not job.truncated)
    late = "not started: the time for running it ran out"
    finished = [
        result if result is not None else RunResult(tuple(argv), None, "", "", start_error=late)
        for argv, result in zip(argvs, results)
    ]
    if any(result.returncode is None or result.returncode < 0 or result.truncated for result in finished):
        from dkms_rustc import warm

        warm.spoil("a program did not answer normally")  # a timeout or crash is no answer to replay
    return finished


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
