"""Prove a selected rustc against the kernel's own metadata, the way the module build will use it.

A tiny ``no_std`` crate that loads the kernel's ``kernel`` crate (and through it ``core``,
``compiler_builtins`` and the proc macros) is compiled to metadata only, with
``--sysroot=/dev/null -L <tree>/rust`` like kbuild. This catches what a version string
cannot: a half-upgraded toolchain whose ``--version`` works but which cannot compile, or
metadata that does not load. A success is remembered per (compiler file identity, kernel
metadata identity), so repeated runs start no process.

rustc loads the tree's proc macros (running their initialisers as root), so the test compile
reads only what was checked: ``rust/`` as :func:`dkms_rustc.kernel.read_kernel` resolved it
once, and only when that directory, everything in it rustc may load and what those load are
root-only (``KernelRust.code_problem``); scripts/target.json as a private copy (in a fresh
0700 directory) of exactly the bytes :mod:`dkms_rustc.targetspec` accepted.
"""

from __future__ import annotations

import enum
import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dkms_rustc import runner, warm
from dkms_rustc.cache import Cache, file_identity
from dkms_rustc.kernel import KernelRust
from dkms_rustc.runner import Deadline
from dkms_rustc.toolchains import Toolchain

# A test compile takes a few tens of milliseconds (a few hundred on a busy machine); one that
# takes longer is stopped so a hanging compiler cannot stall a kernel upgrade.
PROOF_TIMEOUT = 6.0
_ERROR_RE = re.compile(r"^error(\[E\d{4}\])?: (.*)$", re.MULTILINE)


class ProofOutcome(str, enum.Enum):
    """What a test compile says about a candidate."""

    PASSED = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # not attempted or inconclusive

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ProofResult:
    """How the test compile against the kernel's metadata went (or why it was not run)."""

    outcome: ProofOutcome
    detail: str
    code: str | None = None  # rustc's error code, e.g. "E0514"
    compiler_failed: bool = False  # the compiler hung, crashed or could not start

    @property
    def ok(self) -> bool:
        return self.outcome is ProofOutcome.PASSED

    @property
    def skipped(self) -> bool:
        """Not attempted, or inconclusive: the selection rests on the version string alone."""
        return self.outcome is ProofOutcome.SKIPPED

    @property
    def compiler_at_fault(self) -> bool:
        """The compiler, not the kernel's metadata, is what failed: it crashed or hung, or it is
        not the build its own files claim (E0514/E0460: an interrupted upgrade)."""
        return self.compiler_failed or self.code in ("E0514", "E0460")


def _kernel_identity(kernel: KernelRust) -> list[object] | None:
    assert kernel.rust_dir is not None
    identities: list[object] = []
    for artifact in kernel.artifacts:
        identity = file_identity(artifact.path)
        if identity is None:
            return None
        identities.append([artifact.path.name, identity])
    if kernel.target_spec_data is not None:
        import hashlib

        identities.append(["target", hashlib.sha256(kernel.target_spec_data).hexdigest()])
    return [str(kernel.rust_dir), identities]


def _compiler_identity(toolchain: Toolchain) -> list[object] | None:
    identity = file_identity(toolchain.binary)
    if identity is None:
        return None
    # The compiler proper lives in librustc_driver; a half-upgrade changes it, not bin/rustc.
    drivers = sorted(glob.glob(str(toolchain.binary.parent.parent / "lib" / "librustc_driver-*.so")))
    return [str(toolchain.binary), identity, [[d, file_identity(Path(d))] for d in drivers]]


def proof_command(toolchain: Toolchain, kernel: KernelRust, workdir: Path) -> list[str]:
    """The test compile's command line: the kernel's rust/ by the path resolved once and
    checked, the target specification as the private copy in ``workdir``."""
    assert kernel.rust_dir is not None
    argv = [
        str(toolchain.binary),
        "--edition=2021",
        "--crate-type=rlib",
        "--emit=metadata",
        "--crate-name=dkms_rustc_proof",
        "--sysroot=/dev/null",
        "-Cpanic=abort",
        "-L",
        str(kernel.rust_dir),
        "-o",
        str(workdir / "libdkms_rustc_proof.rmeta"),
    ]
    if kernel.target_spec is not None:
        # kbuild's own flags for a custom target (x86's scripts/target.json), on the copy.
        argv += [f"--target={workdir / 'target.json'}", "-Zunstable-options"]
    elif kernel.target_triple is not None:
        argv.append(f"--target={kernel.target_triple}")
    argv.append(str(workdir / "proof.rs"))
    return argv


def _proof_source(kernel: KernelRust) -> str:
    lines = ["#![no_std]"]
    if any(artifact.path.name == "libkernel.rmeta" and artifact.compiler for artifact in kernel.artifacts):
        lines.append("extern crate kernel;")
    return "\n".join(lines) + "\n"


def _private_parent(preferred: str) -> str | None:
    """Where the test compile's 0700 directory may go: a directory whose entries nobody else
    can replace (TMPDIR could be a user's, kept by sudo -E), else /tmp, else nowhere."""
    from dkms_rustc.trust import walk_problem

    for candidate in dict.fromkeys((os.path.realpath(preferred), "/tmp")):
        if walk_problem(candidate, directory=True, own_entries_only=True) is None:
            return candidate
    return None


def _foreign_proc_macros(kernel: KernelRust) -> str | None:
    """Why no compiler here can test (or build) against this kernel: its proc macros are code
    for another machine (arm64 headers on an x86_64 host), which rustc cannot load."""
    from dkms_rustc.elfarch import foreign_objects, host_machine, machine_name

    objects = [artifact.path for artifact in kernel.artifacts if artifact.path.name.endswith(".so")]
    foreign = foreign_objects(objects)
    if not foreign:
        return None
    host = host_machine()
    assert host is not None
    names = ", ".join(path.name for path, _ in foreign)
    theirs = machine_name(foreign[0][1])
    return (
        f"test compile skipped: these are headers for another architecture: the kernel's proc "
        f"macros ({names}) are {theirs} code and this machine is {machine_name(host)}, so no "
        f"compiler here can load them; Rust modules for this kernel are built on the {theirs} "
        "machine itself, or against headers from a cross build (whose proc macros are built for "
        "the build machine); the selection rests on the exact version string"
    )


def _written_by(output: Path) -> str | None:
    """The compiler string in the test crate's metadata (None: none was written), else what is
    wrong with it."""
    from dkms_rustc.rmeta import MetadataError, read_rmeta_version

    try:
        return read_rmeta_version(output)
    except FileNotFoundError:
        return None
    except (OSError, MetadataError) as error:
        return f"unreadable ({error})"


def _unlike(written: str | None) -> str:
    if written is None:
        return "wrote no crate metadata"
    if written.startswith("rustc "):
        return f"the crate metadata it wrote names {written!r}"
    return f"the crate metadata it wrote is {written}"


def first_error(stderr: str) -> tuple[str | None, str]:
    """The error code (``E0514``) and message of rustc's first error."""
    match = _ERROR_RE.search(stderr)
    if match is None:
        line = stderr.strip().splitlines()[0] if stderr.strip() else "no diagnostic"
        return None, line[:200]
    code = match.group(1)[1:-1] if match.group(1) else None
    return code, match.group(2).strip()[:200]


def prove(
    toolchain: Toolchain,
    kernel: KernelRust,
    cache: Cache,
    deadline: Deadline,
    trusted_dirs: tuple[Path, ...] = (),
) -> ProofResult:
    """Compile the test crate with ``toolchain`` against ``kernel``'s metadata."""
    if kernel.rust_dir is None:
        return ProofResult(ProofOutcome.SKIPPED, "the kernel has no rust/ metadata to compile against")
    # rustc loads (runs the initialisers of) the kernel's proc-macro .so files: only do that
    # from a tree nobody else controls (read_kernel judged it; its note says what that means).
    if kernel.code_problem:
        return ProofResult(
            ProofOutcome.SKIPPED,
            f"test compile skipped: the kernel tree is not trusted ({kernel.code_problem}); "
            "the selection rests on the exact version string",
        )
    if kernel.target_spec is not None and (kernel.target_spec_problem or kernel.target_spec_data is None):
        return ProofResult(
            ProofOutcome.SKIPPED,
            f"test compile skipped: {kernel.target_spec_problem or 'the target specification was not read'}; "
            "the selection rests on the exact version string",
        )
    compiler_key = _compiler_identity(toolchain)
    kernel_key = _kernel_identity(kernel)
    key = [compiler_key, kernel_key] if compiler_key and kernel_key else None
    if key is not None and cache.get("proof", key) == "ok":
        return ProofResult(
            ProofOutcome.PASSED, "a test crate compiled against the kernel's metadata (remembered)"
        )
    foreign = _foreign_proc_macros(kernel)
    if foreign:
        return ProofResult(ProofOutcome.SKIPPED, foreign)
    timeout = deadline.remaining(PROOF_TIMEOUT)
    if timeout <= 0:
        warm.spoil("the time for test compiles ran out")
        return ProofResult(
            ProofOutcome.SKIPPED, "test compile not attempted: the time for test compiles ran out"
        )
    import shutil  # only a test compile needs these; a remembered result does not
    import tempfile

    parent = _private_parent(tempfile.gettempdir())
    if parent is None:
        return ProofResult(
            ProofOutcome.SKIPPED,
            f"test compile skipped: neither {tempfile.gettempdir()} nor /tmp is a directory only root "
            "can change, so the copy rustc would read there could be swapped",
        )
    workdir = Path(tempfile.mkdtemp(prefix="dkms-rustc-proof-", dir=parent))
    try:
        (workdir / "proof.rs").write_text(_proof_source(kernel))
        if kernel.target_spec_data is not None:
            # Same name (rustc names a JSON target after its file) and the same bytes.
            (workdir / "target.json").write_bytes(kernel.target_spec_data)
        env = runner.minimal_environment({"RUSTC_BOOTSTRAP": "1"})
        result = runner.run(proof_command(toolchain, kernel, workdir), timeout=timeout, env=env, cwd=workdir)
        written = _written_by(workdir / "libdkms_rustc_proof.rmeta") if result.ok else None
    except OSError as error:
        return ProofResult(
            ProofOutcome.FAILED, f"test compile could not be prepared: {error}", compiler_failed=True
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if result.ok and written != toolchain.version_text:
        # An exit status of 0 is not a compile: /usr/bin/true pinned as a rustc exits 0 too.
        return ProofResult(
            ProofOutcome.FAILED,
            f"test compile failed: {toolchain.binary} exited 0 but {_unlike(written)}: it is not "
            f"the rustc its files say ({toolchain.version_text})",
            compiler_failed=True,
        )
    if result.ok:
        if key is not None:
            cache.put("proof", key, "ok")
        return ProofResult(ProofOutcome.PASSED, "a test crate compiled against the kernel's metadata")
    if result.returncode is None or result.returncode < 0 or result.start_error:
        return ProofResult(
            ProofOutcome.FAILED, f"test compile failed: {result.failure()}", compiler_failed=True
        )
    code, message = first_error(result.stderr)
    label = f"error[{code}]" if code else "error"
    if code in ("E0461", "E0462"):
        # The crate was built for another target than the one this tool could tell: the test
        # says nothing about the compiler. Select on the version string, and say so.
        return ProofResult(
            ProofOutcome.SKIPPED,
            f"test compile inconclusive ({label}: {message}): the kernel's target could not be "
            "determined; the selection rests on the exact version string",
            code=code,
        )
    return ProofResult(
        ProofOutcome.FAILED,
        f"test compile against the kernel's metadata failed: {label}: {message}",
        code=code,
    )
