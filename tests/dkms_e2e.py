# SPDX-License-Identifier: GPL-2.0-or-later
"""Real DKMS, real make, real compilers: the pieces the end-to-end tests are built from.

tests/test_dkms_e2e.py uses them with the kbuild-style trees of tests/kerneltree.py; the
real-kernel scenarios can use them unchanged with a real build tree.

The machine, as DKMS sees it (:func:`machine`)
    DKMS runs the module's PRE_BUILD shim (dkms/dkms-rustc-pre-build), and the shim runs the tool
    only from fixed root-owned paths (the ``for candidate in ...`` list of the shim, read from it:
    :func:`tool_paths`), never from PATH. The tool reads ``/etc/dkms-rustc.conf``. Both are
    system-wide, so :func:`machine` is a context manager that, under an exclusive lock
    (:data:`LOCK_PATH`, shared by every checkout and process on the machine; the real-kernel
    tests, tests/test_realkernel.py, use this module too), for one block:

    * installs a small launcher at ``/usr/local/bin/dkms-rustc`` that runs THIS checkout's code
      (``#!<sys.executable> -I``, ``sys.path.insert(0, <src>)``, ``dkms_rustc.cli.main``), or, with
      ``tool="missing"``, makes sure none of the shim's paths holds a tool;
    * writes ``/etc/dkms-rustc.conf`` with the given text (root-owned, 0644): the way a test
      chooses what discovery sees (``search_defaults = no`` + ``search = DIR``), the policy and
      a private ``cache_dir``.

    A foreign file at any of these paths is never overwritten: it is renamed to
    ``<path>.dkms-e2e-aside`` and renamed back afterwards. Everything is put back in a
    ``finally``; if a run was killed, the next :func:`machine` (or :func:`recover`) does it:
    files carrying a test marker line are removed and set-aside files return.

The module (:func:`put_module`)
    Copies a DKMS module source (default: ``examples/rust-hello``, whose dkms.conf holds the
    README's lines) into a sandbox's source tree. The dkms.conf is the module's own, unchanged,
    after checking that it contains every line of ``dkms/dkms.conf.snippet`` (the README's
    snippet, kept identical to it by tests/test_dkms_files.py) verbatim; :func:`without_hook`
    removes exactly those lines (the plain default MAKE). ``shim="not-executable"`` or
    ``"missing"`` breaks the shim the way a packager might.

The DKMS sandbox (:func:`sandbox`)
    A :class:`dkms_harness.DkmsSandbox` of one DKMS generation that builds against a given kernel
    tree with the real ``make`` (no recording wrapper), ``-k`` = the tree's kernel release, and a
    PATH like apt's (``/usr/sbin:/usr/bin:/sbin:/bin``) with, optionally, a directory in front
    whose ``rustc`` is a chosen compiler: the rustc "on PATH" that the hook must NOT pick when
    it does not match, and the one a plain MAKE line compiles with.

Helpers: :data:`GENERATION_IDS` and :func:`generation_or_skip` (parametrize a test over every
DKMS generation this machine provides), :func:`choose_toolchains` (the kernel's compiler and a
different one for PATH), :func:`built_module`, :func:`elf_comment` (a ``.ko``'s ``.comment``
strings), :func:`hook_output` (where a DKMS generation puts the hook's words).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dkms_harness import (
    DkmsGeneration,
    DkmsHarnessError,
    DkmsResult,
    DkmsSandbox,
    ensure_generation,
    generation_ids,
)
from kerneltree import RealToolchain

__all__ = [
    "BASE_PATH",
    "EXAMPLE_MODULE",
    "GENERATION_IDS",
    "LOCK_PATH",
    "SHIM",
    "SNIPPET",
    "SRC",
    "SYSTEM_CONFIG",
    "ToolchainPair",
    "built_module",
    "choose_toolchains",
    "elf_comment",
    "generation_or_skip",
    "generations_or_skip",
    "hook_output",
    "machine",
    "machine_lock",
    "module_package",
    "put_module",
    "recover",
    "sandbox",
    "snippet_lines",
    "tool_paths",
    "without_hook",
]

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
SHIM = ROOT / "dkms" / "dkms-rustc-pre-build"
SNIPPET = ROOT / "dkms" / "dkms.conf.snippet"
EXAMPLE_MODULE = ROOT / "examples" / "rust-hello"
#: The tool's system configuration (dkms_rustc.config.SYSTEM_CONFIG).
SYSTEM_CONFIG = Path("/etc/dkms-rustc.conf")
#: Where :func:`machine` installs its launcher (one of the shim's paths).
LAUNCHER_PATH = Path("/usr/local/bin/dkms-rustc")
#: The PATH apt's maintainer scripts and dkms.service run with.
BASE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: Serialises every test that changes the paths above, on this machine (all checkouts, all
#: processes): whoever holds it owns them.
LOCK_PATH = (
    Path("/run/lock/dkms-rustc-tests.lock")
    if Path("/run/lock").is_dir()
    else Path("/tmp/dkms-rustc-tests.lock")
)
LOCK_TIMEOUT = 1800.0

_LAUNCHER_MARKER = "# dkms-rustc end-to-end test launcher (tests/dkms_e2e.py)"
_CONFIG_MARKER = "# dkms-rustc end-to-end test configuration (tests/dkms_e2e.py)"
#: Lines that mark a file as written by a test: under the lock, such a file is a leftover of a
#: killed run.
_TEST_MARKERS = (_LAUNCHER_MARKER, _CONFIG_MARKER)
_ASIDE = ".dkms-e2e-aside"
#: Where set-aside originals wait.
_ASIDE_SUFFIXES = (_ASIDE,)
_held = 0  # nesting depth of machine() in this process (flock is per open file)


# --------------------------------------------------------------------------- the shim's view


def tool_paths() -> tuple[Path, ...]:
    """The fixed paths the shim looks at, in its order (read from the shim itself)."""
    text = SHIM.read_text()
    match = re.search(r"for candidate in (.*?); do", text, re.DOTALL)
    if match is None:
        raise DkmsHarnessError(f"{SHIM}: no `for candidate in ...; do` list")
    return tuple(Path(word) for word in match.group(1).split() if word != "\\")


def _managed_paths() -> tuple[Path, ...]:
    return (*tool_paths(), SYSTEM_CONFIG)


def _aside(path: Path, suffix: str = _ASIDE) -> Path:
    return path.with_name(path.name + suffix)


def _is_test_file(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return any(marker.encode() in head for marker in _TEST_MARKERS)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def recover() -> None:
    """Put the machine back: remove test-written launchers and configurations, return set-aside
    originals (idempotent). Call it only while holding the lock (:func:`machine` does)."""
    for path in _managed_paths():
        for _ in range(2 * len(_ASIDE_SUFFIXES) + 1):
            if _is_test_file(path):
                path.unlink()
            asides = [_aside(path, suffix) for suffix in _ASIDE_SUFFIXES if _exists(_aside(path, suffix))]
            if not asides:
                break
            if _exists(path):
                raise DkmsHarnessError(
                    f"both {path} and {asides[0]} exist: a test set the second aside and something "
                    f"else installed the first meanwhile; decide which to keep and remove the other"
                )
            asides[0].rename(path)


def _set_aside(path: Path) -> None:
    if _exists(path):
        path.rename(_aside(path))


def _write_root_file(path: Path, text: str, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.dkms-e2e-tmp")
    temporary.write_text(text)
    os.chown(temporary, 0, 0)
    temporary.chmod(mode)
    os.replace(temporary, path)


def launcher_text(src: Path = SRC) -> str:
    return (
        f"#!{sys.executable} -I\n"
        f"{_LAUNCHER_MARKER}: runs the dkms-rustc in {src}; removed after the test.\n"
        "import sys\n"
        f"sys.path.insert(0, {str(src)!r})\n"
        "from dkms_rustc.cli import main\n"
        "raise SystemExit(main())\n"
    )


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """The machine-wide test lock, exclusively (re-entrant): for tests that change what every
    run of the tool sees (/etc/dkms-rustc.conf, the launcher, installed packages) or that
    depend on nothing else changing it meanwhile."""
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_PATH, "a+") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise DkmsHarnessError(f"cannot lock {LOCK_PATH}: {error}") from None
                time.sleep(0.2)
        _held = 1
        try:
            yield
        finally:
            _held = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def machine(config: str, *, tool: str = "installed", src: Path = SRC) -> Iterator[Path | None]:
    """For the block: the tool where the shim finds it (``tool="installed"``: yields the launcher's
    path) or nowhere it looks (``"missing"``: yields None), and ``config`` as
    /etc/dkms-rustc.conf. Root only. See the module docstring."""
    if tool not in ("installed", "missing"):
        raise ValueError(f"tool must be 'installed' or 'missing', not {tool!r}")
    if os.geteuid() != 0:
        raise DkmsHarnessError("the end-to-end machine set-up needs root")
    with machine_lock():
        recover()
        try:
            paths = tool_paths()
            if tool == "missing":
                hidden = paths
            else:
                # Everything the shim would look at before (or instead of) our launcher.
                hidden = paths[: paths.index(LAUNCHER_PATH) + 1] if LAUNCHER_PATH in paths else paths
            for path in hidden:
                _set_aside(path)
            launcher: Path | None = None
            if tool == "installed":
                launcher = LAUNCHER_PATH if LAUNCHER_PATH in paths else paths[0]
                _write_root_file(launcher, launcher_text(src), 0o755)
            _set_aside(SYSTEM_CONFIG)
            _write_root_file(
                SYSTEM_CONFIG, f"{_CONFIG_MARKER}; the original is restored after it\n{config}", 0o644
            )
            yield launcher
        finally:
            recover()


# --------------------------------------------------------------------------- the module


def snippet_lines() -> list[str]:
    """The README's dkms.conf lines, from dkms/dkms.conf.snippet (comments dropped)."""
    return [line for line in SNIPPET.read_text().splitlines() if line and not line.startswith("#")]


def without_hook(dkms_conf: str) -> str:
    """``dkms_conf`` without the snippet's lines: DKMS's default MAKE, no PRE_BUILD."""
    lines = dkms_conf.splitlines()
    for line in snippet_lines():
        if line not in lines:
            raise DkmsHarnessError(f"dkms.conf lacks the documented line {line!r}")
        lines.remove(line)
    return "\n".join(lines) + "\n"


def module_package(module_dir: Path = EXAMPLE_MODULE) -> tuple[str, str]:
    """(PACKAGE_NAME, PACKAGE_VERSION) of a module's dkms.conf."""
    text = (module_dir / "dkms.conf").read_text()
    values = dict(re.findall(r'^(PACKAGE_NAME|PACKAGE_VERSION)="?([^"\n]*)"?$', text, re.MULTILINE))
    return values["PACKAGE_NAME"], values["PACKAGE_VERSION"]


def put_module(
    box: DkmsSandbox,
    module_dir: Path = EXAMPLE_MODULE,
    *,
    hook: bool = True,
    shim: str = "executable",
) -> Path:
    """Copy ``module_dir`` into the sandbox's source tree; return the copy.

    Its dkms.conf must carry the snippet's lines verbatim; ``hook=False`` removes them.
    ``shim``: ``"executable"`` (as shipped), ``"not-executable"`` (mode 0644) or ``"missing"``.
    """
    if shim not in ("executable", "not-executable", "missing"):
        raise ValueError(f"unknown shim state {shim!r}")
    conf = (module_dir / "dkms.conf").read_text()
    without = without_hook(conf)  # also checks the lines are there
    name, version = module_package(module_dir)
    dest = box.module_source(name, version)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(module_dir, dest)
    if not hook:
        (dest / "dkms.conf").write_text(without)
    hook_file = dest / SHIM.name
    if shim == "missing":
        hook_file.unlink()
    elif shim == "not-executable":
        hook_file.chmod(0o644)
    elif not os.access(hook_file, os.X_OK):
        raise DkmsHarnessError(f"{module_dir}/{SHIM.name} is not executable")
    return dest


# --------------------------------------------------------------------------- DKMS and compilers


#: The test ids of the DKMS generations this machine runs (dkms_harness.generation_ids()):
#: ``old``, ``current`` and each upstream version installed here. Read once, at collection.
GENERATION_IDS = generation_ids()
_generations: dict[str, DkmsGeneration] = {}


def generation_or_skip(gen_id: str) -> DkmsGeneration:
    """The DKMS generation ``gen_id`` (set up on first use); pytest.skip when that is
    impossible here because this is not root, unless ``DKMS_RUSTC_REQUIRE_E2E=1`` (what .ci/run
    sets): then, and whenever root cannot set it up, the test fails with the reason."""
    import pytest

    if gen_id not in _generations:
        try:
            _generations[gen_id] = ensure_generation(gen_id)
        except DkmsHarnessError as error:
            if os.geteuid() != 0 and os.environ.get("DKMS_RUSTC_REQUIRE_E2E") != "1":
                pytest.skip(f"dkms {gen_id} not set up and not root: {error}")
            raise
    return _generations[gen_id]


def generations_or_skip() -> list[DkmsGeneration]:
    """Every generation of :data:`GENERATION_IDS` (see :func:`generation_or_skip`)."""
    return [generation_or_skip(gen_id) for gen_id in GENERATION_IDS]


@dataclass(frozen=True)
class ToolchainPair:
    kernel: RealToolchain  # wrote the kernel tree's metadata
    path: RealToolchain  # `rustc` first on PATH: a different compiler build
    others: tuple[RealToolchain, ...]  # every real toolchain except the kernel's


def choose_toolchains(found: Mapping[str, RealToolchain]) -> ToolchainPair | None:
    """The kernel's compiler (preferably one NOT on any PATH: rustup's nightly, else Debian's,
    else stable) and a different one for PATH (stable, Debian's, nightly); None with fewer
    than two distinct compilers."""
    distinct = {tc.version_text: tc for tc in found.values()}
    if len(distinct) < 2:
        return None
    kernel = next(found[name] for name in ("nightly", "debian", "stable", *found) if name in found)
    others = tuple(tc for tc in found.values() if tc.version_text != kernel.version_text)
    path = next(
        (found[name] for name in ("stable", "debian", "nightly") if name in found and found[name] in others),
        others[0],
    )
    return ToolchainPair(kernel=kernel, path=path, others=others)


def sandbox(
    generation: DkmsGeneration,
    root: Path,
    kernel_tree: Path,
    *,
    path_rustc: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> DkmsSandbox:
    """A sandbox building against ``kernel_tree`` (``-k`` its include/config/kernel.release) with
    the real make, PATH = [dir whose ``rustc`` is ``path_rustc``:] + :data:`BASE_PATH`."""
    release = (kernel_tree / "include" / "config" / "kernel.release").read_text().strip()
    env = {"PATH": BASE_PATH}
    if path_rustc is not None:
        bin_dir = Path(root) / "path-bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "rustc").symlink_to(path_rustc)
        env["PATH"] = f"{bin_dir}:{BASE_PATH}"
    env.update(extra_env or {})
    return DkmsSandbox(
        generation,
        Path(root) / "dkms",
        kernelver=release,
        record_make=False,
        kernel_source_dir=kernel_tree,
        extra_env=env,
    )


def built_module(box: DkmsSandbox, name: str, version: str, module: str) -> Path | None:
    """DKMS's saved copy of a built ``module``.ko (any compression suffix), or None."""
    directory = box.dkms_tree / name / version / box.kernelver / box.arch / "module"
    found = sorted(directory.glob(f"{module}.ko*"))
    return found[0] if found else None


def elf_comment(path: Path) -> list[str]:
    """The strings of an ELF file's ``.comment`` section (compilers that wrote it)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as handle:
        section = ELFFile(handle).get_section_by_name(".comment")
        data = b"" if section is None else section.data()
    return [item.decode(errors="replace") for item in data.split(b"\0") if item]


def hook_output(generation: DkmsGeneration, result: DkmsResult) -> str:
    """Where this generation puts PRE_BUILD's own output: make.log (3.1.5+) or the terminal."""
    if generation.pre_build_output_in_make_log:
        return result.make_log_text or ""
    return result.output
