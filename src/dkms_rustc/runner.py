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


def minimal_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"LC_ALL": "C", "PATH": MINIMAL_PATH, "HOME": "/nonexistent"}
    if extra:
        env.update(extra)
    return env


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def run(
    argv: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> RunResult:
    """Run ``argv`` (argv[0] an absolute path) and collect its output within the limits."""
    import selectors
    import subprocess

    global processes_started
    if not os.path.isabs(argv[0]):
        raise ValueError(f"refusing to run {argv[0]!r}: not an absolute path")
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else minimal_environment(),
            cwd=cwd,
            close_fds=True,
            start_new_session=True,  # so a timeout can stop the program and its children
        )
    except OSError as error:
        return RunResult(tuple(argv), None, "", "", start_error=error.strerror or str(error))
    processes_started += 1
    assert process.stdout is not None and process.stderr is not None
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    total = 0
    timed_out = truncated = False
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, 1)
        selector.register(process.stderr, selectors.EVENT_READ, 2)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                chunks[key.data].append(data)
                total += len(data)
            if total > output_cap:
                truncated = True
                break
    if timed_out or truncated:
        _kill_group(process)
    try:
        returncode: int | None = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill_group(process)
        timed_out = True
        returncode = None
    process.stdout.close()
    process.stderr.close()
    if timed_out:
        returncode = None
    return RunResult(
        tuple(argv),
        returncode,
        _decode(b"".join(chunks[1])[:output_cap]),
        _decode(b"".join(chunks[2])[:output_cap]),
        timed_out=timed_out,
        truncated=truncated,
    )


def _kill_group(process: object) -> None:
    import signal
    import subprocess

    assert isinstance(process, subprocess.Popen)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=2)
