"""The hand-off to make when the build directory cannot take it: a clear error, exit status 4,
no half-written file ever visible, and no stale arguments left for make to use."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dkms_rustc.cli import main
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.handoff import ARGS_FILE, REFUSAL_FILE, HandoffError, write_refusal, write_selection

WORDS = ["RUSTC=/usr/bin/rustc", "HOSTRUSTC=/usr/bin/rustc"]


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def test_directory_where_the_args_file_should_be(tmp_path: Path) -> None:
    (tmp_path / ARGS_FILE).mkdir()
    with pytest.raises(HandoffError, match=r"cannot write .*dkms-rustc.make-args \(Is a directory\)"):
        write_selection(tmp_path, WORDS)
    assert _leftovers(tmp_path) == []


def test_disk_full_injected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ARGS_FILE).write_text("RUSTC=/old/rustc\n")

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched, pytest.raises(HandoffError, match="No space left on device"):
        patched.setattr(os, "write", full)
        write_selection(tmp_path, WORDS)
    assert (tmp_path / ARGS_FILE).read_text() == "RUSTC=/old/rustc\n"  # never half of the new one
    assert _leftovers(tmp_path) == []


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_disk_really_full(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "size=4k") as small:
        with contextlib.suppress(OSError):
            (small / "filler").write_bytes(b"x" * 64 * 1024)
        with pytest.raises(HandoffError, match="No space left on device"):
            write_refusal(small, ["a line that needs a block"] * 50, "stop")
        assert not (small / ARGS_FILE).exists()
        assert _leftovers(small) == []


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_read_only_build_dir(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        try:
            write_selection(read_only, WORDS)
        except HandoffError as error:
            assert "(Read-only file system)" in str(error)
            assert str(error).startswith(f"cannot write in {read_only}")
        else:
            raise AssertionError("a read-only build dir was written")


def test_unwritable_build_dir_injected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    real_open = os.open

    def open_denying_new_files(path: str, flags: int, *args: object) -> int:
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    with (
        monkeypatch.context() as patched,
        pytest.raises(HandoffError, match=r"cannot write in .* \(Permission denied\)"),
    ):
        patched.setattr(os, "open", open_denying_new_files)
        write_selection(tmp_path, WORDS)


def test_a_reader_never_sees_partial_content(tmp_path: Path) -> None:
    """make reads the file while hooks (re)write it: every read is one whole version."""
    first = [f"RUSTC=/opt/first/{n:06d}/rustc" for n in range(6000)]  # ~150 KiB: many write() calls
    second = [f"BINDGEN=/opt/second/{n:06d}/bindgen" for n in range(3000)]
    versions = {" ".join(first) + "\n", " ".join(second) + "\n"}
    write_selection(tmp_path, first)
    stop = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append((tmp_path / ARGS_FILE).read_text())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(60):
            write_selection(tmp_path, second if round_ % 2 else first)
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 10
    assert set(seen) <= versions, [text[-60:] for text in set(seen) - versions][:3]


@pytest.mark.parametrize("fault", ["directory in the way", "disk full", "build dir missing"])
def test_pre_build_with_a_broken_build_dir_exits_4_and_leaves_nothing_stale(
    fault: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_system_config: None,
) -> None:
    build = tmp_path / "build"
    build.mkdir()
    if fault == "directory in the way":
        (build / ARGS_FILE).mkdir()
    elif fault == "disk full":
        (build / ARGS_FILE).write_text("RUSTC=/stale/from/another/kernel\n")

        real_write = os.write

        def full(fd: int, data: bytes) -> int:  # the build directory's file system is full
            if os.readlink(f"/proc/self/fd/{fd}").startswith(f"{build}/"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", full)
    else:
        build = tmp_path / "absent"
    conf = tmp_path / "test.conf"
    conf.write_text(f"cache_dir = {tmp_path / 'cache'}\nsearch_defaults = no\n")
    # A kernel tree that does not exist: the refusal still has to reach make.
    code = main(["pre-build", "--kernel-dir", str(tmp_path / "no-kernel"), "--build-dir", str(build)])
    err = capsys.readouterr().err
    assert code == ExitCode.ERROR
    assert "ERROR: cannot hand the decision to make" in err
    assert "Traceback" not in err
    if fault == "disk full":
        assert not (build / ARGS_FILE).exists()  # the stale arguments were withdrawn
        assert "the MAKE line finds no dkms-rustc.make-args and stops" in err
    if build.exists():
        assert _leftovers(build) == []
        assert not (build / REFUSAL_FILE).exists() or (build / REFUSAL_FILE).read_text().endswith(")\n")
