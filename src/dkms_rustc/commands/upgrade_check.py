"""``dkms-rustc upgrade-check --before | --after``: the package-manager hook that catches a
rolling upgrade removing or replacing the rustc an installed kernel needs.

A kernel's Rust metadata accepts modules only from the very compiler build that wrote it, so
an upgrade of the distribution's rustc (Arch's ``rust``, Gentoo's depclean of an old slot,
Debian's ``rustc-web``) silently makes every Rust DKMS module unbuildable for the kernels
already installed; nobody notices until the next module or kernel update fails. apt
(``DPkg::Pre-Invoke`` / ``DPkg::Post-Invoke``) and pacman (PreTransaction / PostTransaction
hooks) run this before and after a transaction: ``--before`` remembers which kernels could
build their Rust modules and with which rustc, ``--after`` looks again and, for each kernel
that could before and cannot now, prints a banner with the fix (keep or pin the old
toolchain). It does nothing when no Rust module is registered with DKMS, and never fails the
transaction unless ``package_hook_fail = yes``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from dkms_rustc import hints
from dkms_rustc.cache import Cache
from dkms_rustc.commands._shared import ConfigFileError, cache_from, search_dirs, settings_from
from dkms_rustc.commands.status import MODULES_DIR, installed_kernels
from dkms_rustc.config import Settings
from dkms_rustc.decision import Verdict
from dkms_rustc.dkmsmodules import DkmsModule, registered_modules
from dkms_rustc.engine import Request, assess, prepare_toolchains
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.options import UpgradeCheckOptions
from dkms_rustc.output import print_lines

_BANNER = "*" * 72
_STATE_KIND = "upgrade-check"


@dataclass(frozen=True)
class KernelState:
    """One installed kernel as a transaction found it."""

    release: str
    builds: bool  # its Rust modules would build now
    refused: bool  # they would not: no installed rustc is the kernel's
    needs: str | None  # the rustc version string its metadata names
    rustc: str | None  # the compiler that would build its modules, when one does

    def as_json(self) -> dict[str, object]:
        return {"builds": self.builds, "needs": self.needs, "rustc": self.rustc}


def _modules_dirs(args: UpgradeCheckOptions) -> list[Path]:
    return list(args.modules_dir) if args.modules_dir else [MODULES_DIR]


def _kernel_states(args: UpgradeCheckOptions, settings: Settings, cache: Cache) -> list[KernelState]:
    search = search_dirs(args)
    kernels = [entry for entry in installed_kernels(_modules_dirs(args), [], None) if entry.tree.exists()]
    if not kernels:
        return []
    prepared = prepare_toolchains(Request(None, None, search), settings, cache)
    states: list[KernelState] = []
    for entry in kernels:
        request = Request(kernel_dir=entry.tree, kernelrelease=entry.release, search=search)
        decision = assess(request, settings, cache, prepared=prepared).decision
        kernel = decision.kernel
        states.append(
            KernelState(
                release=entry.release or str(entry.tree),
                builds=decision.verdict is Verdict.OK,
                refused=decision.verdict is Verdict.REFUSED,
                needs=kernel.expected_rustc if kernel else None,
                rustc=str(decision.rustc.binary) if decision.rustc else None,
            )
        )
    return states


def _remembered(value: object) -> dict[str, KernelState] | None:
    """The --before record, or None when there is none or it is not what --before writes."""
    if not isinstance(value, dict):
        return None
    result: dict[str, KernelState] = {}
    for release, state in value.items():
        if not isinstance(release, str) or not isinstance(state, dict):
            return None
        needs, rustc = state.get("needs"), state.get("rustc")
        result[release] = KernelState(
            release=release,
            builds=state.get("builds") is True,
            refused=False,
            needs=needs if isinstance(needs, str) else None,
            rustc=rustc if isinstance(rustc, str) else None,
        )
    return result


def names_of(modules: list[DkmsModule]) -> str:
    return ", ".join(f"{module.name}/{module.version}" for module in modules)


def _changing(text: str) -> list[Path]:
    """The files a transaction is about to change, as pacman's NeedsTargets lists them
    (``usr/bin/rustc``: relative to the root), one per line."""
    return [Path("/" + line.strip().lstrip("/")) for line in text.splitlines()[:10000] if line.strip()]


def _touches(rustc: str, changing: list[Path]) -> bool:
    """Whether a change of ``changing`` replaces that compiler: its binary, or a file of its
    sysroot (librustc_driver, the sysroot's libcore): any of them changes the compiler build."""
    binary = Path(os.path.realpath(rustc))
    sysroot = binary.parent.parent
    for path in changing:
        real = Path(os.path.realpath(path))
        if real == binary or real == Path(rustc) or (sysroot != Path("/") and sysroot in real.parents):
            return True
    return False


def _stop_before(states: list[KernelState], changing: list[Path], names: str, settings: Settings) -> int:
    """package_hook_fail = yes, before the transaction (pacman's PreTransaction hook, with
    AbortOnFail): stop it when it would change the compiler a kernel's modules are built with."""
    at_risk = [state for state in states if state.builds and state.rustc and _touches(state.rustc, changing)]
    if not at_risk:
        return ExitCode.OK
    platform = hints.detect_platform()
    lines = [_BANNER]
    for state in at_risk:
        assert state.needs is not None and state.rustc is not None
        lines += [
            f"STOPPED: this package transaction would remove or replace {state.rustc}, the rustc that "
            f"kernel {state.release} needs for the Rust DKMS modules {names} ({state.needs})",
            *(f"fix: {line}" for line in hints.keep_toolchain(state.needs, state.rustc, platform)),
        ]
    lines += [
        f"package_hook_fail = yes ({settings.origins.get('package_hook_fail')}): stopping the "
        "transaction; set it to no to let such upgrades through with a warning",
        _BANNER,
    ]
    print_lines(lines)
    return ExitCode.HOOK_FAILED


def unusable_configuration(args: UpgradeCheckOptions, error: ConfigFileError) -> int:
    """An unusable configuration must not break a package manager's transaction."""
    print_lines([f"upgrade check: {error}; nothing checked"])
    return ExitCode.OK


def run(args: UpgradeCheckOptions) -> int:
    settings = settings_from(args)
    cache = cache_from(args, settings)
    key = [str(path) for path in _modules_dirs(args)]
    modules = [module for module in registered_modules(args.dkms_tree, args.dkms_etc) if module.is_rust]
    if not modules:
        if args.after:
            cache.put(_STATE_KIND, key, None)
        return ExitCode.OK  # nothing to protect: stay silent in the package manager's output
    states = _kernel_states(args, settings, cache)
    if args.before:
        cache.put(_STATE_KIND, key, {state.release: state.as_json() for state in states})
        if args.changing_stdin and settings.package_hook_fail:
            return _stop_before(states, _changing(sys.stdin.read()), names_of(modules), settings)
        return ExitCode.OK
    before = _remembered(cache.get(_STATE_KIND, key))
    cache.put(_STATE_KIND, key, None)
    names = names_of(modules)
    lost: list[tuple[KernelState, KernelState | None]] = []
    for state in states:
        previous = before.get(state.release) if before is not None else None
        # Without a --before record (the hook before the transaction did not run), every
        # kernel left without its compiler is named; with one, only those this transaction broke.
        if state.refused and state.needs and (before is None or (previous is not None and previous.builds)):
            lost.append((state, previous))
    if not lost:
        fine = sum(1 for state in states if state.builds)
        print_lines(
            [
                f"upgrade check: the Rust DKMS modules ({names}) can still be built for "
                f"{fine} of {len(states)} installed kernels, as before this transaction"
            ]
        )
        return ExitCode.OK
    platform = hints.detect_platform()
    lines = [_BANNER]
    for state, previous in lost:
        assert state.needs is not None
        was = previous.rustc if previous else None
        if previous is not None:
            headline = (
                f"this package transaction removed or replaced the rustc that kernel {state.release} needs"
            )
        else:  # no record from before the transaction: say what is, not what changed
            headline = (
                f"no installed rustc is the one kernel {state.release} needs "
                "(a package transaction removed it?)"
            )
        lines += [
            f"WARNING: {headline}: the Rust DKMS modules {names} will NOT build for it "
            "(the next kernel or module update fails)",
            f"kernel {state.release} needs {state.needs}"
            + (f"; before this transaction that was {was}" if was else ""),
            *(f"fix: {line}" for line in hints.keep_toolchain(state.needs, was, platform)),
        ]
    lines += ["check again with: dkms-rustc status", _BANNER]
    print_lines(lines)
    if settings.syslog:
        from dkms_rustc import logsink

        logsink.send(lines[1:-1], failed=True, context="upgrade check")
    if settings.package_hook_fail:
        print_lines(
            [f"package_hook_fail = yes ({settings.origins.get('package_hook_fail')}): failing the hook"]
        )
        return ExitCode.HOOK_FAILED
    return ExitCode.OK
