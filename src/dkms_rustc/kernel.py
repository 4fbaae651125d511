"""What a kernel build tree says about the Rust toolchain it was built with.

The build tree is what DKMS calls ``kernel_source_dir``: usually ``/lib/modules/<release>/build``.
:func:`read_kernel` assembles a :class:`KernelRust` from its kbuild configuration and, the
ground truth, the compiler string stored in the crate metadata under ``rust/``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dkms_rustc import kconfig
from dkms_rustc.cache import Cache, file_identity
from dkms_rustc.fileio import NotRegularFileError, read_prefix
from dkms_rustc.rmeta import MetadataError, read_rmeta_version
from dkms_rustc.versions import kbuild_version_text, release_numbers

# Minimum tool versions by kernel (scripts/min-tool-version.sh), for trees that lack the script.
_BUILTIN_MINIMUMS: tuple[tuple[tuple[int, int], str, str], ...] = (
    ((7, 1), "1.85.0", "0.71.1"),
    ((6, 11), "1.78.0", "0.65.1"),
    ((6, 6), "1.71.1", "0.65.1"),
    ((6, 1), "1.62.0", "0.56.0"),
)
_EXTERN_RE = re.compile(
    r"--extern[ =](?:(?:force|noprelude|priv)(?:,(?:force|noprelude|priv))*:)?([A-Za-z_]\w*)"
)
# Line-local patterns ([ \t], not \s, around ^ and $): \s would span lines and make a file of
# blank lines cost quadratic time.
_INCLUDE_RE = re.compile(r"^[ \t]*-?include[ \t]+(\S+)[ \t\r]*$", re.MULTILINE)
_MAKE_C_RE = re.compile(r"(?:^|\s)-C\s*(\S+)")
_MIN_TOOL_LABEL_RE = re.compile(r"^\s*(rustc|bindgen)\)\s*$")
_MIN_TOOL_BLOCK_LINES = 40
_ECHO_VERSION_RE = re.compile(r"\becho\s+([0-9]+\.[0-9]+(?:\.[0-9]+)?)")
_MAX_MAKEFILE = 1024 * 1024


class KernelTreeError(Exception):
    """The kernel build tree is missing or too incomplete to say anything about Rust."""


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


def tree_roots(tree: Path) -> tuple[Path, ...]:
    """The build dir, then any tree its Makefile delegates to (Debian's split ``-common`` headers)."""
    roots = [tree]
    text = _read_small(tree / "Makefile")
    if text:
        for match in list(_INCLUDE_RE.finditer(text)) + list(_MAKE_C_RE.finditer(text)):
            target = match.group(1)
            if "$" in target:
                continue
            candidate = (tree / target).parent if target.endswith("Makefile") else tree / target
            candidate = Path(os.path.normpath(candidate))
            if candidate.is_dir() and candidate not in roots:
                roots.append(candidate)
    return tuple(roots)


def _find(roots: tuple[Path, ...], relative: str) -> Path | None:
    for root in roots:
        path = root / relative
        if path.exists():
            return path
    return None


_KERNELVARIABLES_RE = re.compile(
    r"^[ \t]*override[ \t]+KERNELRELEASE[ \t]*:?=[ \t]*(\S+)[ \t\r]*$", re.MULTILINE
)


def _read_kernelrelease(roots: tuple[Path, ...]) -> str | None:
    """The release the tree builds for. Debian's split headers override it in .kernelvariables
    (their include/config/kernel.release holds the upstream version, not the package's)."""
    variables = _read_small(roots[0] / ".kernelvariables", 64 * 1024)
    match = _KERNELVARIABLES_RE.search(variables) if variables else None
    if match:
        return match.group(1)
    path = _find(roots, "include/config/kernel.release")
    text = _read_small(path, 256) if path else None
    release = text.strip() if text else ""
    return release if release and release.isprintable() and " " not in release else None


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
        except NotRegularFileError as error:
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


def _read_artifacts(rust_dir: Path, cache: Cache) -> tuple[Artifact, ...]:
    try:
        names = sorted(os.listdir(rust_dir))
    except OSError as error:
        return (Artifact(rust_dir, None, f"cannot be listed ({error.strerror})"),)
    artifacts: list[Artifact] = []
    for name in names:
        path = rust_dir / name
        if name.endswith(".rmeta"):
            try:
                artifacts.append(Artifact(path, read_rmeta_version(path)))
            except NotRegularFileError as error:
                artifacts.append(Artifact(path, None, error.strerror))
            except OSError as error:
                artifacts.append(Artifact(path, None, f"cannot be read ({error.strerror})"))
            except MetadataError as error:
                artifacts.append(Artifact(path, None, str(error)))
        elif name.endswith(".so"):
            artifacts.append(_read_proc_macro(path, cache))
    return tuple(artifacts)


def _read_proc_macro(path: Path, cache: Cache) -> Artifact:
    identity = file_identity(path)
    key = [str(path), identity]
    remembered = cache.get("elf", key) if identity else None
    if isinstance(remembered, list) and len(remembered) == 2:
        return Artifact(path, remembered[0], remembered[1])
    from dkms_rustc.elfmeta import ElfError, read_rustc_section_version

    try:
        artifact = Artifact(path, read_rustc_section_version(path))
    except NotRegularFileError as error:
        artifact = Artifact(path, None, error.strerror)
    except OSError as error:
        artifact = Artifact(path, None, f"cannot be read ({error.strerror})")
    except ElfError as error:
        artifact = Artifact(path, None, str(error))
    if identity:
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
    crates: list[str] = []
    for line in text.splitlines():
        if "--extern" not in line:
            continue
        for name in _EXTERN_RE.findall(line):
            if name not in crates:
                crates.append(name)
    return tuple(crates), path


def _crate_present(rust_dir: Path, crate: str) -> bool:
    return (rust_dir / f"lib{crate}.rmeta").is_file() or (rust_dir / f"lib{crate}.so").is_file()


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


def _target_spec(roots: tuple[Path, ...], notes: list[str]) -> Path | None:
    """scripts/target.json, which rustc reads in the test compile: a regular file or nothing
    (a FIFO there would stall the compiler until its timeout)."""
    path = _find(roots, "scripts/target.json")
    if path is None or path.is_file():
        return path
    notes.append(f"{path} is not a regular file; the test compile does without it")
    return None


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


def read_kernel(tree: Path, cache: Cache, kernelrelease: str | None = None) -> KernelRust:
    """Everything the tree says about Rust. Raises KernelTreeError for a missing or broken tree."""
    if not tree.exists():
        which = f" for kernel {kernelrelease}" if kernelrelease else ""
        raise KernelTreeError(
            f"the kernel build tree {tree}{which} does not exist: the kernel headers are not installed"
        )
    if not tree.is_dir():
        raise KernelTreeError(f"the kernel build tree {tree} is not a directory")
    roots = tree_roots(tree)
    release = kernelrelease or _read_kernelrelease(roots)
    notes: list[str] = []
    config = _load_config(tree, roots, release, notes)

    rust_enabled = config.enabled("CONFIG_RUST")
    rustc_text = config.get("CONFIG_RUSTC_VERSION_TEXT")
    if rustc_text == "n":  # 6.11-ish kernels built without rustc store the literal n
        rustc_text = None

    rust_dir = _find(roots, "rust")
    if rust_dir is not None and not rust_dir.is_dir():
        notes.append(f"{rust_dir} is not a directory")
        rust_dir = None
    artifacts = _read_artifacts(rust_dir, cache) if rust_dir else ()
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
    if rust_dir is not None and artifacts:
        required = ("core", *crates) if "core" not in crates else crates
        missing = tuple(crate for crate in required if not _crate_present(rust_dir, crate))
    min_rustc, min_bindgen, minimums_source = _minimums(roots, release)

    target_spec = _target_spec(roots, notes)
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
        target_spec=target_spec,
        target_triple=_target_triple(roots, target_spec, _config_arch(config)),
        notes=tuple(notes),
    )
