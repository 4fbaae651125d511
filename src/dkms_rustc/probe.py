"""Learn what each discovered rustc and bindgen is: version, LLVM, host, sysroot, rust-src.

A rustc is read from its own files first, with no process: the sysroot's
``lib/rustlib/<host>/lib/libcore-*.rmeta`` header (else, where a toolchain ships only
``.rlib`` files, the header of the ``libcore-*.rlib``'s ``lib.rmeta`` member:
:mod:`dkms_rustc.rlib`) names the compiler that built it (the same string that compiler
writes into metadata) and rustup's ``lib/libLLVM.so.<ver>-rust-...``
names its LLVM. Only when the files do not say enough is ``rustc -vV`` run, through
:mod:`dkms_rustc.runner`, and the answer remembered per file identity. bindgen states its
version nowhere but in ``--version``, so it is run once and remembered the same way.
Nothing untrusted is ever run: :mod:`dkms_rustc.trust` is asked first.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from dkms_rustc import runner
from dkms_rustc.cache import Cache, file_identity
from dkms_rustc.fileio import known_to_all, listing_problem, public_files_only, read_public_files_only
from dkms_rustc.rmeta import MetadataError, read_rmeta_version
from dkms_rustc.runner import Deadline
from dkms_rustc.text import is_plain_word
from dkms_rustc.toolchains import CandidateKind, Found, Toolchain, refusal
from dkms_rustc.trust import reached_reason, untrusted_libraries_reason, untrusted_reason
from dkms_rustc.versions import parse_bindgen_version, parse_rustc_version

_LLVM_FILE_RE = re.compile(r"^libLLVM(?:\.so\.|-)(\d+)(?:\.(\d+))?")
# Each program asked for its version gets this long; all are asked at once. rustc -vV and
# bindgen --version answer in tens of milliseconds, also cold, so this is ample margin.
PROBE_TIMEOUT = 2.0
PROBE_OUTPUT_CAP = 64 * 1024


def _sysroot_of(binary: Path) -> Path:
    return binary.parent.parent


def _rust_src(sysroot: Path, release: str | None) -> Path | None:
    if public_files_only():
        # An untrusted toolchain's (never used): whether a user's link there leads to a
        # file would be told, wherever it leads.
        return None
    library = sysroot / "lib" / "rustlib" / "src" / "rust" / "library"
    if (library / "core" / "src" / "lib.rs").is_file():
        return library
    if release:
        numbers = release.split("-", 1)[0]
        # Debian and Ubuntu: rust-src / rust-X.Y-src install the library sources here.
        distro_library = Path("/usr/src") / f"rustc-{numbers}" / "library"
        if (distro_library / "core" / "src" / "lib.rs").is_file():
            return distro_library
    return None


def _llvm_from_files(sysroot: Path) -> str | None:
    """rustup ships ``lib/libLLVM.so.22.1-rust-1.95.0-stable``: the most precise name wins."""
    best: str | None = None
    if listing_problem(sysroot / "lib"):
        return None
    for path in glob.glob(os.path.join(glob.escape(str(sysroot / "lib")), "libLLVM*")):
        match = _LLVM_FILE_RE.match(os.path.basename(path))
        if match:
            version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
            if best is None or len(version) > len(best):
                best = version
    return best


def _libcore_versions(rustlib: Path) -> dict[str, set[str]]:
    """The compiler string of every ``<host>/lib/libcore-*.rmeta`` under ``rustlib``, by the
    hosts that say it; a host directory without one is read from its ``libcore-*.rlib``."""
    pattern = os.path.join(glob.escape(str(rustlib)), "*", "lib", "libcore-*")
    by_directory: dict[str, list[str]] = {}
    if listing_problem(rustlib):
        return {}
    for path in glob.glob(pattern):
        by_directory.setdefault(os.path.dirname(path), []).append(path)
    versions: dict[str, set[str]] = {}
    for directory, paths in by_directory.items():
        if listing_problem(directory):
            continue
        rmetas = [path for path in paths if path.endswith(".rmeta")]
        for path in rmetas or [path for path in paths if path.endswith(".rlib")]:
            try:
                if path.endswith(".rmeta"):
                    text = read_rmeta_version(Path(path))
                else:  # Debian bookworm's rustc-web 1.85 ships only .rlib files
                    from dkms_rustc.rlib import read_rlib_version

                    text = read_rlib_version(Path(path))
            except (OSError, MetadataError):
                continue
            versions.setdefault(text, set()).add(os.path.basename(os.path.dirname(directory)))
    return versions


def _loads_rustc_driver(found: Found, cache: Cache) -> bool:
    """Is ``found`` a rustc at all? rustc proper is librustc_driver-<hash>.so, which every
    build's ``bin/rustc`` loads; a program that does not (a script, ``/usr/bin/true`` pinned by
    mistake) says nothing by sitting beside a sysroot, so it is asked instead. Remembered by
    the file's identity (the ELF reader is not imported on a warm run)."""
    key = _identity_key(found)
    remembered = cache.get("rustc-driver", key) if key else None
    if isinstance(remembered, bool):
        return remembered
    from dkms_rustc.loader import LoaderError, read_dynamic

    try:
        dynamic = read_dynamic(str(found.binary))
    except (OSError, LoaderError):
        return False
    loads = dynamic is not None and any(name.startswith("librustc_driver-") for name in dynamic.needed)
    if key:
        cache.put("rustc-driver", key, loads)
    return loads


def _from_files(found: Found, cache: Cache) -> Toolchain | None:
    if not _loads_rustc_driver(found, cache):
        return None
    sysroot = _sysroot_of(found.binary)
    versions = _libcore_versions(sysroot / "lib" / "rustlib")
    if len(versions) != 1:
        return None  # nothing readable, or a mixed sysroot: ask the compiler itself
    text, hosts = next(iter(versions.items()))
    parsed = parse_rustc_version(text)
    if parsed is None:
        return None
    return Toolchain(
        found=found,
        version_text=text,
        release=parsed.release,
        llvm_version=_llvm_from_files(sysroot),
        host=_pick_host(hosts, found.rustup_toolchain),
        sysroot=sysroot,
        rust_src=_rust_src(sysroot, parsed.release),
        learned_from=f"libcore metadata in {sysroot / 'lib' / 'rustlib'}",
    )


def _pick_host(hosts: set[str], toolchain_name: str | None) -> str | None:
    if len(hosts) == 1:
        return next(iter(hosts))
    for host in sorted(hosts):
        if toolchain_name and toolchain_name.endswith(host):
            return host
    import platform

    machine = platform.machine()
    for host in sorted(hosts):
        if host.startswith(machine + "-") and "linux" in host:
            return host
    return None


def _parse_verbose(found: Found, output: str) -> Toolchain | None:
    lines = output.splitlines()
    if not lines:
        return None
    parsed = parse_rustc_version(lines[0])
    if parsed is None:
        return None
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    sysroot = _sysroot_of(found.binary)
    return Toolchain(
        found=found,
        version_text=parsed.text,
        release=fields.get("release", parsed.release),
        llvm_version=fields.get("LLVM version"),
        host=fields.get("host"),
        sysroot=sysroot,
        rust_src=_rust_src(sysroot, parsed.release),
        learned_from=f"{found.binary} -vV",
    )


def _identity_key(found: Found) -> list[object] | None:
    identity = file_identity(found.binary)
    return None if identity is None else [str(found.binary), identity]


def _describe_output(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return repr(line[:80]) if line else "nothing"


def _untrusted(
    found: Found,
    trusted_dirs: tuple[Path, ...],
    cache: Cache | None = None,
    memo: dict[str, object] | None = None,
) -> str | None:
    """Why ``found`` must not run (as root: someone else could have planted or changed it,
    or any library the dynamic loader would map for it)."""
    # How it was reached is judged first: when a user's link leads there, the reason is that
    # link, which names only what the user made (the resolved file may lie where they cannot
    # look: /proc/<pid>/exe of another user's process, a directory only they may list).
    reason = reached_reason((found.path, *found.also), found.binary, trusted_dirs=trusted_dirs, memo=memo)
    if reason is None:
        reason = untrusted_reason(found.binary, trusted_dirs=trusted_dirs, concrete=True, memo=memo)
    if reason is None:
        reason = untrusted_libraries_reason(found.binary, trusted_dirs=trusted_dirs, cache=cache, memo=memo)
    return reason


def _uncarriable(tool: Toolchain) -> Toolchain:
    """A usable tool whose path the DKMS MAKE line cannot carry (a space, a quote) is skipped
    with the reason, so that check, status and pre-build agree on what is selected."""
    if not tool.usable:
        return tool
    for path in (tool.binary, tool.rust_src):
        if path is not None and not is_plain_word(f"X={path}"):
            return replace(
                tool,
                skipped=f"unusable: its path {str(path)!r} holds characters (spaces, quotes, globs) the "
                "DKMS MAKE line cannot carry; install it under a plain path",
            )
    return tool


def _untrusted_toolchain(found: Found, reason: str, cache: Cache) -> Toolchain:
    """Skipped; for the report, what its files say it is (read, never run)."""
    skipped = f"not trusted: {reason}"
    if found.binary != found.path and not known_to_all(str(found.binary)):
        # Where a link leads that not every user could find is neither named nor described.
        return Toolchain(found=found, skipped=skipped, untrusted=reason, binary_hidden=True)
    from_files = None
    if found.kind is CandidateKind.RUSTC:
        # Someone else chose what its files are (a user's link into a private toolchain):
        # only public files say what it is.
        previous = public_files_only()
        read_public_files_only(f"{found.path} is not trusted ({reason})")
        try:
            from_files = _from_files(found, cache)
        finally:
            read_public_files_only(previous)
    if from_files is not None:
        return replace(from_files, skipped=skipped, untrusted=reason)
    return Toolchain(found=found, skipped=skipped, untrusted=reason)


def _out_of_time(found: Found) -> Toolchain:
    from dkms_rustc import warm

    warm.spoil("the time for examining compilers ran out")
    return Toolchain(found=found, skipped="not examined: the time for examining compilers and tools ran out")


def _rustc_from_run(
    found: Found, result: runner.RunResult, key: list[object] | None, cache: Cache
) -> Toolchain:
    if not result.ok:
        return Toolchain(found=found, skipped=f"unusable: {result.failure()}")
    parsed = _parse_verbose(found, result.stdout)
    if parsed is None:
        return Toolchain(
            found=found,
            skipped=f"unusable: `{found.binary} -vV` printed {_describe_output(result.stdout)}, "
            "not a rustc version",
        )
    if key:
        cache.put("rustc-vV", key, result.stdout)
    return parsed


def _bindgen_from_output(found: Found, output: str, learned: str) -> Toolchain:
    release = parse_bindgen_version(output)
    if release is None:
        return Toolchain(
            found=found,
            skipped=f"unusable: `{found.path} --version` printed {_describe_output(output)}, "
            "not a bindgen version",
        )
    return Toolchain(found=found, version_text=output, release=release, learned_from=learned)


def _bindgen_from_run(
    found: Found, result: runner.RunResult, key: list[object] | None, cache: Cache
) -> Toolchain:
    if not result.ok:
        return Toolchain(found=found, skipped=f"unusable: {result.failure()}")
    output = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    tool = _bindgen_from_output(found, output, f"{found.path} --version")
    if tool.usable and key:
        cache.put("bindgen-version", key, output)
    return tool


def probe_all(
    rustcs: Sequence[Found],
    bindgens: Sequence[Found],
    cache: Cache,
    deadline: Deadline,
    trusted_dirs: tuple[Path, ...] = (),
) -> tuple[list[Toolchain], list[Toolchain]]:
    """What every candidate is. Files and remembered answers first; the programs that must be
    asked (``rustc -vV``, ``bindgen --version``) all run at once, so that however many of
    them hang, together they cost at most one PROBE_TIMEOUT (and never more than ``deadline``).
    Nothing is run that :mod:`dkms_rustc.trust` does not accept."""
    founds = [*rustcs, *bindgens]
    known: list[Toolchain | None] = []
    to_run: list[tuple[int, list[str], list[object] | None]] = []
    memo: dict[str, object] = {}  # directories judged once per run
    for index, found in enumerate(founds):
        refused = refusal(found)
        if refused:
            known.append(Toolchain(found=found, skipped=refused))
            continue
        reason = _untrusted(found, trusted_dirs, cache, memo)
        if reason:
            known.append(_untrusted_toolchain(found, reason, cache))
            continue
        key = _identity_key(found)
        if found.kind is CandidateKind.RUSTC:
            from_files = _from_files(found, cache)
            if from_files is not None:
                known.append(from_files)
                continue
            remembered = cache.get("rustc-vV", key) if key else None
            if isinstance(remembered, str):
                parsed = _parse_verbose(found, remembered)
                if parsed is not None:
                    known.append(replace(parsed, learned_from=f"{found.binary} -vV (remembered)"))
                    continue
            to_run.append((index, [str(found.binary), "-vV"], key))
        else:
            remembered = cache.get("bindgen-version", key) if key else None
            if isinstance(remembered, str):
                known.append(_bindgen_from_output(found, remembered, f"{found.path} --version (remembered)"))
                continue
            to_run.append((index, [str(found.binary), "--version"], key))
        known.append(None)
    if to_run:
        timeout = deadline.remaining(PROBE_TIMEOUT)
        if timeout <= 0:
            for index, _, _ in to_run:
                known[index] = _out_of_time(founds[index])
        else:
            results = runner.run_many(
                [argv for _, argv, _ in to_run], timeout=timeout, output_cap=PROBE_OUTPUT_CAP
            )
            for (index, _, key), result in zip(to_run, results):
                found = founds[index]
                interpret = _rustc_from_run if found.kind is CandidateKind.RUSTC else _bindgen_from_run
                known[index] = interpret(found, result, key, cache)
    tools = [
        _uncarriable(tool) if tool is not None else _out_of_time(found) for found, tool in zip(founds, known)
    ]
    return tools[: len(rustcs)], tools[len(rustcs) :]


def probe_rustc(
    found: Found, cache: Cache, deadline: Deadline, trusted_dirs: tuple[Path, ...] = ()
) -> Toolchain:
    return probe_all([found], [], cache, deadline, trusted_dirs)[0][0]
