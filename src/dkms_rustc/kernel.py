"""What a kernel build tree says about the Rust toolchain it was built with.

The build tree is what DKMS calls ``kernel_source_dir``: usually ``/lib/modules/<release>/build``.
:func:`read_kernel` assembles a :class:`KernelRust` from its kbuild configuration and, the
ground truth, the compiler string stored in the crate metadata under ``rust/``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dkms_rustc import kconfig, targetspec
from dkms_rustc.cache import Cache
from dkms_rustc.fileio import (
    NotPublicError,
    NotRegularFileError,
    absolute,
    known_to_all,
    mode_of,
    open_regular_fd,
    public_files_only,
    read_prefix,
    read_public_files_only,
)
from dkms_rustc.fileio import is_dir as _is_dir
from dkms_rustc.fileio import is_file as _is_file
from dkms_rustc.fileio import (
    listing_problem as private_listing,
)
from dkms_rustc.rmeta import MetadataError, read_rmeta_version
from dkms_rustc.trust import is_inside_any, is_named_inside_any, untrusted_libraries_reason, walk_problem
from dkms_rustc.versions import kbuild_version_text, release_numbers

# Minimum tool versions by kernel (scripts/min-tool-version.sh), for trees that lack the script.
_BUILTIN_MINIMUMS: tuple[tuple[tuple[int, int], str, str], ...] = (
    ((7, 1), "1.85.0", "0.71.1"),
    ((6, 11), "1.78.0", "0.65.1"),
    ((6, 6), "1.71.1", "0.65.1"),
    ((6, 1), "1.62.0", "0.56.0"),
)
_EXTERN_RE = re.compile(
    r"--extern[ =](?:(?:force|noprelude|priv)(?:,(?:force|noprelude|priv))*:)?([A-Za-z_]\w{0,63})(?!\w)"
)
# Line-local patterns ([ \t], not \s, around ^ and $): \s would span lines and make a file of
# blank lines cost quadratic time.
_INCLUDE_RE = re.compile(r"^[ \t]*-?include[ \t]+(\S+)[ \t\r]*$", re.MULTILINE)
_MAKE_C_RE = re.compile(r"(?:^|[ \t])-C[ \t]*([^\s]+)", re.MULTILINE)
_MIN_TOOL_LABEL_RE = re.compile(r"^\s*(rustc|bindgen)\)\s*$")
_MIN_TOOL_BLOCK_LINES = 40
# At most 9 digits a number: more is no version, and Python refuses to convert 4300 digits.
_ECHO_VERSION_RE = re.compile(r"\becho\s+([0-9]{1,9}\.[0-9]{1,9}(?:\.[0-9]{1,9})?)(?![0-9])")
_MAX_MAKEFILE = 1024 * 1024
# Bounds on what a hostile tree can make this module do (real trees: 2 roots, 10 crates, 48
# entries in rust/, 12 crate files, 1 architecture).
MAX_ROOTS = 4
MAX_INCLUDES = 64  # include / -C targets looked at in the Makefile
MAX_CRATES = 128
MAX_RUST_ENTRIES = 4096
MAX_ARTIFACTS = 256
MAX_ARCHES = 64
_RELEASE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,199}")
_UNLISTABLE = "cannot be listed"
_CRATE_SUFFIXES = (".rmeta", ".rlib", ".so")  # what rustc's crate locator may open in -L rust


class KernelTreeError(Exception):
    """The kernel build tree is missing or too incomplete to say anything about Rust."""


def is_kernel_release(text: str) -> bool:
    """A name ``/lib/modules/<release>`` can hold: letters, digits and ``._+~-``, at most 200."""
    return _RELEASE_RE.fullmatch(text) is not None


@dataclass(frozen=True)
class Artifact:
    """A file under ``rust/`` and the compiler that wrote it (or why that could not be read)."""

    path: Path
    compiler: str | None
    error: str | None = None


@dataclass(frozen=True)
class KernelRust:
    """Everything a kernel build tree says about the Rust toolchain it was built with."""

    tree: Path
    roots: tuple[Path, ...]
    kernelrelease: str | None
    config_path: Path
    rust_enabled: bool
    config_rustc_text: str | None
    config_bindgen_text: str | None
    config_rustc_number: int | None
    config_llvm_number: int | None
    rust_dir: Path | None
    artifacts: tuple[Artifact, ...]
    expected_rustc: str | None
    expected_source: str | None
    required_crates: tuple[str, ...]
    crates_source: Path | None
    missing_crates: tuple[str, ...]
    min_rustc: str | None
    min_bindgen: str | None
    minimums_source: str
    target_spec: Path | None
    target_triple: str | None  # a built-in target from arch/<arch>/Makefile (arm64, riscv, ...)
    notes: tuple[str, ...] = field(default=())
    # The bytes of target_spec that were checked (the test compile gets a copy of exactly
    # these), and why they must not reach rustc.
    target_spec_data: bytes | None = None
    target_spec_problem: str | None = None
    # Why rustc must not load this tree's code (rust_dir, resolved once, and what it holds are
    # not root-only); None when the test compile may run.
    code_problem: str | None = None

    @property
    def has_metadata(self) -> bool:
        return any(artifact.compiler for artifact in self.artifacts)

    @property
    def llvm_major(self) -> int | None:
        if not self.config_llvm_number:
            return None
        return self.config_llvm_number // 10000


def build_dir_for_release(kernelrelease: str) -> Path:
    return Path("/lib/modules") / kernelrelease / "build"


def _read_small(path: Path, limit: int = _MAX_MAKEFILE) -> str | None:
    try:
        return read_prefix(path, limit).decode("utf-8", "replace")
    except OSError:
        return None


_mode = mode_of


def tree_roots(tree: Path) -> tuple[Path, ...]:
    """The build dir, then any tree its Makefile delegates to (Debian's split ``-common`` headers).

    Linear and bounded whatever the Makefile holds: at most MAX_INCLUDES targets are looked
    at, at most MAX_ROOTS roots kept."""
    roots = [tree]
    seen = {str(tree)}
    text = _read_small(tree / "Makefile")
    if not text:
        return tuple(roots)
    looked = 0
    for pattern in (_INCLUDE_RE, _MAKE_C_RE):
        for match in pattern.finditer(text):
            target = match.group(1)
            if "$" in target:
                continue
            looked += 1
            if looked > MAX_INCLUDES or len(roots) >= MAX_ROOTS:
                return tuple(roots)
            candidate = (tree / target).parent if target.endswith("Makefile") else tree / target
            candidate = Path(os.path.normpath(candidate))
            if str(candidate) not in seen and _is_dir(candidate):
                seen.add(str(candidate))
                roots.append(candidate)
    return tuple(roots)


def _find(roots: tuple[Path, ...], relative: str) -> Path | None:
    for root in roots:
        path = root / relative
        if os.path.lexists(path) and _mode(path) is not None:
            return path
    return None


_KERNELVARIABLES_RE = re.compile(
    r"^[ \t]*override[ \t]+KERNELRELEASE[ \t]*:?=[ \t]*(\S+)[ \t\r]*$", re.MULTILINE
)


def _read_kernelrelease(roots: tuple[Path, ...], notes: list[str]) -> str | None:
    """The release the tree builds for. Debian's split headers override it in .kernelvariables
    (their include/config/kernel.release holds the upstream version, not the package's)."""
    variables = _read_text(roots[0] / ".kernelvariables", 64 * 1024, notes)
    match = _KERNELVARIABLES_RE.search(variables) if variables else None
    if match and is_kernel_release(match.group(1)):
        return match.group(1)
    path = _find(roots, "include/config/kernel.release")
    text = _read_text(path, 256, notes) if path else None
    release = text.strip() if text else ""
    # Only a release is ever printed or written into a hand-off file, never other text.
    return release if is_kernel_release(release) else None


def _read_text(path: Path, limit: int, notes: list[str]) -> str | None:
    """Like _read_small, but a file withheld by the disclosure rule is noted (why it was not read)."""
    try:
        return read_prefix(path, limit).decode("utf-8", "replace")
    except NotPublicError as error:
        notes.append(f"{path} {error.strerror}; it was not read")
        return None
    except OSError:
        return None


def _load_config(
    tree: Path, roots: tuple[Path, ...], kernelrelease: str | None, notes: list[str]
) -> kconfig.KbuildConfig:
    tried: list[str] = []
    candidates = [root / "include" / "config" / "auto.conf" for root in roots]
    candidates += [root / ".config" for root in roots]
    if kernelrelease:
        candidates.append(Path("/boot") / f"config-{kernelrelease}")
    for path in candidates:
        if not os.path.lexists(path):
            continue
        try:
            config = kconfig.read_config(path)
        except (NotRegularFileError, NotPublicError) as error:
            tried.append(f"{path} {error.strerror}")
        except OSError as error:
            tried.append(f"{path} cannot be read ({error.strerror})")
        except kconfig.ConfigError as error:
            tried.append(str(error))
        else:
            notes.extend(f"{problem}; used {path} instead" for problem in tried)
            return config
    detail = "; ".join(tried) if tried else "neither include/config/auto.conf nor .config exists"
    raise KernelTreeError(
        f"the kernel build tree {tree} has no usable kbuild configuration ({detail}); "
        "the kernel headers look half-installed: reinstall them"
    )


def _list_rust_dir(rust_dir: Path, notes: list[str], shown: Path) -> tuple[list[str], str | None]:
    """The crate files in ``rust_dir`` (names, sorted), and why the listing cannot be judged
    whole (too many entries): then no test compile loads anything from it."""
    names: list[str] = []
    refused = private_listing(rust_dir, shown)
    if refused:  # which files a private directory holds is as private as what they say
        return [], f"{shown} {_UNLISTABLE} ({refused})"
    try:
        with os.scandir(rust_dir) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_RUST_ENTRIES:
                    problem = f"{rust_dir} holds more than {MAX_RUST_ENTRIES} entries"
                    notes.append(f"{problem}; only the first ones were looked at")
                    return sorted(names), problem
                if entry.name.endswith(_CRATE_SUFFIXES):
                    names.append(entry.name)
    except OSError as error:
        return [], f"{shown} {_UNLISTABLE} ({error.strerror})"
    return sorted(names), None


def _read_artifacts(rust_dir: Path, names: list[str], cache: Cache, notes: list[str]) -> tuple[Artifact, ...]:
    """What wrote each .rmeta and .so, each file read once (hard links: once per inode)."""
    artifacts: list[Artifact] = []
    by_inode: dict[tuple[int, int], Artifact] = {}
    wanted = [name for name in names if name.endswith((".rmeta", ".so"))]
    if len(wanted) > MAX_ARTIFACTS:
        notes.append(f"{rust_dir} holds {len(wanted)} crate files; only the first {MAX_ARTIFACTS} were read")
        wanted = wanted[:MAX_ARTIFACTS]
    for name in wanted:
        path = rust_dir / name
        try:
            st = os.stat(path)
            inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            inode = None
        if inode is not None and inode in by_inode:
            same = by_inode[inode]
            artifacts.append(Artifact(path, same.compiler, same.error))
            continue
        artifact = _read_rmeta(path) if name.endswith(".rmeta") else _read_proc_macro(path, cache)
        if inode is not None:
            by_inode[inode] = artifact
        artifacts.append(artifact)
    return tuple(artifacts)


def _read_rmeta(path: Path) -> Artifact:
    try:
        return Artifact(path, read_rmeta_version(path))
    except (NotRegularFileError, NotPublicError) as error:
        return Artifact(path, None, error.strerror)
    except OSError as error:
        return Artifact(path, None, f"cannot be read ({error.strerror})")
    except MetadataError as error:
        return Artifact(path, None, str(error))


def _read_proc_macro(path: Path, cache: Cache) -> Artifact:
    # Opened first, so a remembered answer never gets around the disclosure rule (which
    # depends on how the file was reached, not on which file it is).
    try:
        fd = open_regular_fd(path)
    except (NotRegularFileError, NotPublicError) as error:
        return Artifact(path, None, error.strerror)
    except OSError as error:
        return Artifact(path, None, f"cannot be read ({error.strerror})")
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    identity = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    key = identity  # the file's identity alone (as cache.file_identity): hard links share one record
    remembered = cache.get("elf", key)
    if isinstance(remembered, list) and len(remembered) == 2:
        return Artifact(path, remembered[0], remembered[1])
    from dkms_rustc.elfmeta import ElfError, read_rustc_section_version

    try:
        artifact = Artifact(path, read_rustc_section_version(path))
    except (NotRegularFileError, NotPublicError) as error:  # swapped meanwhile: not remembered
        return Artifact(path, None, error.strerror)
    except OSError as error:
        artifact = Artifact(path, None, f"cannot be read ({error.strerror})")
    except ElfError as error:
        artifact = Artifact(path, None, str(error))
    cache.put("elf", key, [artifact.compiler, artifact.error])
    return artifact


def _choose_expected(artifacts: tuple[Artifact, ...], notes: list[str]) -> Artifact | None:
    """The artifact whose compiler modules must match: libkernel.rmeta (what modules link
    against), else libcore.rmeta, else the compiler most artifacts name."""
    readable = [artifact for artifact in artifacts if artifact.compiler]
    if not readable:
        return None
    counts = Counter(artifact.compiler for artifact in readable)
    chosen = None
    for preferred in ("libkernel.rmeta", "libcore.rmeta"):
        chosen = chosen or next((a for a in readable if a.path.name == preferred), None)
    if chosen is None:
        top = counts.most_common(1)[0][0]
        chosen = next(artifact for artifact in readable if artifact.compiler == top)
    if len(counts) > 1:
        described = "; ".join(f"{artifact.path.name}: {artifact.compiler}" for artifact in readable)
        notes.append(
            "the kernel's Rust artifacts were written by different compilers "
            f"({described}); modules are checked against {chosen.path.name}'s"
        )
    return chosen


def _required_crates(roots: tuple[Path, ...]) -> tuple[tuple[str, ...], Path | None]:
    path = _find(roots, "scripts/Makefile.build")
    text = _read_small(path) if path else None
    if not text:
        return (), None
    crates: dict[str, None] = {}
    for line in text.split("\n"):
        if "--extern" not in line:
            continue
        for name in _EXTERN_RE.findall(line):
            crates.setdefault(name, None)
            if len(crates) >= MAX_CRATES:
                return tuple(crates), path
    return tuple(crates), path


def _crate_present(rust_dir: Path, crate: str) -> bool:
    return _is_file(rust_dir / f"lib{crate}.rmeta") or _is_file(rust_dir / f"lib{crate}.so")


def _parse_min_tool_versions(text: str) -> dict[str, str]:
    """``{"rustc": "1.85.0", "bindgen": "0.71.1"}`` from scripts/min-tool-version.sh.

    7.2 writes ``if [ "$SRCARCH" = "s390" ]; then echo 1.96.0; else echo 1.85.0; fi``: the
    ``else`` branch is the general minimum, an architecture-specific one comes first.
    Read line by line (a ``case`` label, then up to its ``;;``), so the time is linear in
    the file, whatever it holds.
    """
    found: dict[str, str] = {}
    tool: str | None = None
    block: list[str] = []
    for line in text.splitlines():
        label = _MIN_TOOL_LABEL_RE.match(line)
        if label:
            tool, block = label.group(1), []
            continue
        if tool is None:
            continue
        if line.strip().startswith(";;") or len(block) >= _MIN_TOOL_BLOCK_LINES:
            body = "\n".join(block)
            general = body.rsplit("else", 1)[-1]
            match = _ECHO_VERSION_RE.search(general) or _ECHO_VERSION_RE.search(body)
            if match:
                found[tool] = match.group(1)
            tool = None
            continue
        block.append(line)
    return found


def _minimums(roots: tuple[Path, ...], kernelrelease: str | None) -> tuple[str | None, str | None, str]:
    path = _find(roots, "scripts/min-tool-version.sh")
    text = _read_small(path) if path else None
    if text:
        found = _parse_min_tool_versions(text)
        if found:
            return found.get("rustc"), found.get("bindgen"), str(path)
    numbers = release_numbers(kernelrelease or "")
    if numbers:
        for (major, minor), rustc, bindgen in _BUILTIN_MINIMUMS:
            if numbers[:2] >= (major, minor):
                return rustc, bindgen, f"built-in table for Linux {major}.{minor}+"
    return None, None, "unknown"


def _target_spec(roots: tuple[Path, ...], notes: list[str]) -> targetspec.TargetSpec | None:
    """scripts/target.json, which rustc reads in the test compile, read once and judged
    (targetspec); a FIFO or device there is reported, never waited on."""
    path = _find(roots, "scripts/target.json")
    if path is None:
        return None
    if not _is_file(path):
        notes.append(f"{path} is not a regular file; the test compile does without it")
        return None
    spec = targetspec.check(path)
    if spec.loads_code:
        notes.append(
            f"{spec.problem}: no test compile; the module build reads this file too, so its rustc "
            "would load or run that as root: reinstall the kernel headers package, or have the "
            "kernel's own scripts/generate_rust_target.rs write it again"
        )
    elif spec.problem:
        notes.append(f"{spec.problem}: the test compile, which would have rustc read it, is skipped")
    return spec


_RUST_TARGET_RE = re.compile(r"^\s*KBUILD_RUSTFLAGS\s*\+?:?=.*--target=([A-Za-z0-9_.-]+)\s*$")


# The configuration symbol each architecture directory sets (arch/<dir>/Kconfig).
_ARCH_SYMBOLS = (
    ("CONFIG_ARM64", "arm64"),
    ("CONFIG_RISCV", "riscv"),
    ("CONFIG_LOONGARCH", "loongarch"),
    ("CONFIG_X86", "x86"),
    ("CONFIG_ARM", "arm"),
    ("CONFIG_S390", "s390"),
    ("CONFIG_PPC", "powerpc"),
    ("CONFIG_UML", "um"),
)


def _config_arch(config: kconfig.KbuildConfig) -> str | None:
    return next((name for symbol, name in _ARCH_SYMBOLS if config.enabled(symbol)), None)


def _target_triple(roots: tuple[Path, ...], target_spec: Path | None, arch: str | None = None) -> str | None:
    """The built-in ``--target`` kbuild gives rustc where there is no scripts/target.json.

    arm64, riscv and loongarch name a triple in their ``arch/<arch>/Makefile``; headers ship
    one architecture's directory, a full build tree (a cross build's) all of them: then the
    configuration's architecture (``arch``) says which. Only an unambiguous answer counts: one
    architecture, one triple (a Makefile choosing between several by configuration is left alone).
    """
    if target_spec is not None:
        return None
    triples: set[str] = set()
    architectures = 0
    for root in roots:
        try:
            names = sorted(os.listdir(root / "arch"))
        except OSError:
            continue
        if arch in names and len(names) > 1:
            names = [arch]
        if len(names) > MAX_ARCHES:
            return None
        for name in names:
            text = _read_small(root / "arch" / name / "Makefile")
            if text is None:
                continue
            architectures += 1
            for line in text.splitlines():
                match = _RUST_TARGET_RE.match(line)
                if match and "$" not in match.group(1):
                    triples.add(match.group(1))
    return next(iter(triples)) if architectures == 1 and len(triples) == 1 else None


def _tree_code_problem(
    tree: Path,
    roots: tuple[Path, ...],
    rust_dir: Path,
    names: list[str],
    listing_problem: str | None,
    spec: targetspec.TargetSpec | None,
    trusted_dirs: tuple[Path, ...],
    cache: Cache,
) -> str | None:
    """Why the test compile must not have rustc load this tree's files (None: it may).

    rustc reads every crate file in ``-L rust`` it may need, dlopens the proc macros there
    (running their initialisers), and reads scripts/target.json. All of it must be root-only:
    ``rust_dir`` (already resolved) and each directory up to /, every crate file (and, through
    a link, the file it names), what the dynamic loader maps for each proc macro, and the
    target specification. Checked whatever ``rust/`` held when it was listed: in a root-only
    directory nobody else can add a ``libmacros.so`` later. The tree's own directories (each
    root, resolved) too: the module build runs their Makefiles as root (their contents are not
    audited file by file).
    """
    if listing_problem:
        return listing_problem
    # What lies in the administrator's trusted_dir is theirs; everything else is walked. The
    # tree's own directories always: a user's tree whose rust/ links into a trusted_dir is
    # still the user's (its Makefiles, its scripts/target.json).
    memo: dict[str, object] = {}
    if not is_named_inside_any(tree, trusted_dirs):
        # As given, too: through a user's link to root's tree, the user chooses the tree the
        # module build will run (they may point it at their own before kbuild runs).
        problem = walk_problem(absolute(tree), directory=True, memo=memo)
        if problem:
            return problem
    for root in roots:
        if is_inside_any(root, trusted_dirs):
            continue
        problem = walk_problem(os.path.realpath(root), directory=True, memo=memo)
        if problem:
            return problem
    if not is_inside_any(rust_dir, trusted_dirs):
        problem = _rust_dir_problem(rust_dir, names, trusted_dirs, cache, memo)
        if problem:
            return problem
    if spec is not None and not is_inside_any(spec.path, trusted_dirs):
        # By its resolved path: the test compile gets a copy; the module build reads this one.
        problem = walk_problem(os.path.realpath(spec.path), memo=memo)
        if problem:
            return problem
    return None


def _rust_dir_problem(
    rust_dir: Path, names: list[str], trusted_dirs: tuple[Path, ...], cache: Cache, memo: dict[str, object]
) -> str | None:
    """Why rustc must not load the crate files of ``rust_dir`` (resolved): it, a crate file in
    it, or what the loader maps for a proc macro there is not root-only."""
    problem = walk_problem(str(rust_dir), directory=True, memo=memo)
    if problem:
        return problem
    for name in names:
        path = rust_dir / name
        problem = walk_problem(str(path), memo=memo)
        if problem:
            return problem
        if name.endswith(".so"):
            problem = untrusted_libraries_reason(
                path, trusted_dirs=trusted_dirs, cache=cache, memo=memo, library=True
            )
            if problem:
                return problem
    return None


def _code_note(tree: Path, problem: str) -> str:
    return (
        f"the kernel build tree is not root-only ({problem}): no test compile, and the module "
        f"build itself runs this tree's Makefiles and loads its proc macros (rust/*.so) as root, so "
        f"whoever can change them can run code as root; fix: reinstall the headers package, or as "
        f"root: chown -R root:root {tree} && chmod -R go-w {tree} (and the same for the link's "
        "target, where the tree is a link)"
    )


def read_kernel(
    tree: Path, cache: Cache, kernelrelease: str | None = None, trusted_dirs: tuple[Path, ...] = ()
) -> KernelRust:
    """Everything the tree says about Rust. Raises KernelTreeError for a missing or broken tree.

    ``rust/`` is resolved once, here: what is listed, judged and handed to the test compile
    is that one directory (``KernelRust.rust_dir``), whatever links change meanwhile.
    ``trusted_dirs``: the administrator's (``trusted_dir =``), for a tree others own.
    """
    which = f" for kernel {kernelrelease}" if kernelrelease else ""
    try:
        mode = os.stat(tree).st_mode
    except (OSError, ValueError) as error:
        strerror = getattr(error, "strerror", None) or str(error)
        if isinstance(error, OSError) and error.errno == errno.ENOENT:
            detail = "the kernel headers are not installed"
        else:
            detail = f"it cannot be examined ({strerror})"
        raise KernelTreeError(f"the kernel build tree {tree}{which} does not exist: {detail}") from None
    if not stat.S_ISDIR(mode):
        raise KernelTreeError(f"the kernel build tree {tree} is not a directory")
    # Root reads private files only from a tree nobody else can change: in anyone else's, its
    # links, its Makefile's other trees and its rust/ could name any file root keeps to itself.
    read_public_files_only(_chosen_by_others(tree))
    try:
        return _read_tree(tree, tree_roots(tree), cache, kernelrelease, trusted_dirs)
    finally:
        read_public_files_only(None)


def _chosen_by_others(tree: Path) -> str | None:
    """As root, why others could choose what reading ``tree`` reads (None: only root can)."""
    if os.geteuid() != 0:
        return None
    memo: dict[str, object] = {}
    problem = walk_problem(absolute(tree), directory=True, memo=memo)
    if problem:
        return f"the kernel build tree {tree} is not root-only ({problem})"
    makefile = tree / "Makefile"
    if _is_file(makefile):  # what tree_roots reads (anything else names no other tree)
        problem = walk_problem(absolute(makefile), memo=memo)
        if problem:
            return f"{makefile}, which names the other trees read with it, is not root-only ({problem})"
    return None


def _read_tree(
    tree: Path,
    roots: tuple[Path, ...],
    cache: Cache,
    kernelrelease: str | None,
    trusted_dirs: tuple[Path, ...],
) -> KernelRust:
    notes: list[str] = []
    release = kernelrelease or _read_kernelrelease(roots, notes)
    config = _load_config(tree, roots, release, notes)

    rust_enabled = config.enabled("CONFIG_RUST")
    rustc_text = config.get("CONFIG_RUSTC_VERSION_TEXT")
    if rustc_text == "n":  # 6.11-ish kernels built without rustc store the literal n
        rustc_text = None

    found_rust = _find(roots, "rust")
    rust_dir: Path | None = None
    if found_rust is not None and not _is_dir(found_rust):
        notes.append(f"{found_rust} is not a directory")
    elif found_rust is not None:
        rust_dir = Path(os.path.realpath(found_rust))  # once: everything below uses this
        if os.geteuid() == 0 and not public_files_only():
            # Read by its resolved path, judged by the path it was reached by (a link to it).
            problem = walk_problem(absolute(found_rust), directory=True)
            if problem:
                read_public_files_only(f"{found_rust} is not root-only ({problem})")
    names: list[str] = []
    listing_problem: str | None = None
    if rust_dir is not None:
        # A resolved path that not every user could find is named as it was reached: root
        # resolves links (a user's to /proc/<pid>/cwd, into private directories) they cannot.
        assert found_rust is not None
        shown = rust_dir if known_to_all(str(rust_dir)) else found_rust
        names, listing_problem = _list_rust_dir(rust_dir, notes, shown)
        if listing_problem and _UNLISTABLE in listing_problem and shown is not rust_dir:
            rust_dir = shown  # nothing is read from it, nor compiled against it
    artifacts = _read_artifacts(rust_dir, names, cache, notes) if rust_dir is not None else ()
    if rust_dir is not None and listing_problem and _UNLISTABLE in listing_problem:
        artifacts = (Artifact(rust_dir, None, listing_problem[len(str(rust_dir)) + 1 :]),)
    for artifact in artifacts:
        if artifact.error and artifact.path.name.endswith((".rmeta", ".so")):
            notes.append(f"{artifact.path}: {artifact.error}")
    chosen = _choose_expected(artifacts, notes)
    if chosen is not None:
        expected: str | None = chosen.compiler
        source: str | None = str(chosen.path)
        if rustc_text and expected and kbuild_version_text(expected) != rustc_text:
            notes.append(
                f"the configuration records {rustc_text!r} but the metadata was written by "
                f"{expected!r}; the metadata is what rustc checks, so it wins"
            )
    elif rustc_text:
        expected, source = rustc_text, f"CONFIG_RUSTC_VERSION_TEXT in {config.path}"
    else:
        expected, source = None, None

    crates, crates_source = _required_crates(roots)
    missing: tuple[str, ...] = ()
    private = listing_problem is not None and _UNLISTABLE in listing_problem  # its names stay so
    if rust_dir is not None and artifacts and not private:
        required = ("core", *crates) if "core" not in crates else crates
        missing = tuple(crate for crate in required if not _crate_present(rust_dir, crate))
    min_rustc, min_bindgen, minimums_source = _minimums(roots, release)

    spec = _target_spec(roots, notes)
    code_problem: str | None = None
    if rust_dir is not None and rust_enabled and any(artifact.compiler for artifact in artifacts):
        code_problem = _tree_code_problem(
            tree, roots, rust_dir, names, listing_problem, spec, trusted_dirs, cache
        )
        if code_problem:
            notes.append(_code_note(tree, code_problem))
    return KernelRust(
        tree=tree,
        roots=roots,
        kernelrelease=release,
        config_path=config.path,
        rust_enabled=rust_enabled,
        config_rustc_text=rustc_text,
        config_bindgen_text=config.get("CONFIG_BINDGEN_VERSION_TEXT"),
        config_rustc_number=config.number("CONFIG_RUSTC_VERSION"),
        config_llvm_number=config.number("CONFIG_RUSTC_LLVM_VERSION"),
        rust_dir=rust_dir,
        artifacts=artifacts,
        expected_rustc=expected,
        expected_source=source,
        required_crates=crates,
        crates_source=crates_source,
        missing_crates=missing,
        min_rustc=min_rustc,
        min_bindgen=min_bindgen,
        minimums_source=minimums_source,
        target_spec=spec.path if spec is not None else None,
        target_triple=_target_triple(roots, spec.path if spec is not None else None, _config_arch(config)),
        notes=tuple(notes),
        target_spec_data=spec.data if spec is not None else None,
        target_spec_problem=spec.problem if spec is not None else None,
        code_problem=code_problem,
    )
