"""One assessment, end to end: kernel tree -> candidates -> test compile -> decision.

The commands share this; each step is in its own module and only this one sequences them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from dkms_rustc import decision as decisions
from dkms_rustc import fixes, hints
from dkms_rustc.cache import Cache
from dkms_rustc.config import Settings, applicable_pin
from dkms_rustc.decision import Reason, Verdict
from dkms_rustc.kconfig import ConfigError
from dkms_rustc.kernel import KernelRust, KernelTreeError, build_dir_for_release, read_kernel
from dkms_rustc.kernel import is_kernel_release as kernel_release_shape
from dkms_rustc.probe import PROBE_TIMEOUT, probe_all, probe_rustc
from dkms_rustc.proof import PROOF_TIMEOUT, ProofResult, prove
from dkms_rustc.runner import Deadline
from dkms_rustc.text import printable
from dkms_rustc.toolchains import (
    Discovery,
    Toolchain,
    default_rustup_homes,
    discover,
    is_rustup_home,
    resolve_pin_target,
)

# However many candidates hang, a run costs at most about PROBE_BUDGET (their versions are
# asked all at once) plus PROOF_BUDGET (test compiles, one candidate after the other).
PROBE_BUDGET = PROBE_TIMEOUT + 1.0
PROOF_BUDGET = PROOF_TIMEOUT + 2.0


@dataclass
class Assessment:
    """A decision with the evidence behind it: the candidates examined and the test compiles."""

    decision: decisions.Decision
    rustcs: list[Toolchain] = field(default_factory=list)
    bindgens: list[Toolchain] = field(default_factory=list)
    discovery: Discovery | None = None
    proofs: dict[Path, ProofResult] = field(default_factory=dict)
    pinned: decisions.PinChoice | None = None
    cache_notes: list[str] = field(default_factory=list)  # remembered results not used, and why


@dataclass
class Prepared:
    """Toolchains discovered and probed once, shared by the assessments of several kernels."""

    discovery: Discovery
    rustcs: list[Toolchain]
    bindgens: list[Toolchain]


@dataclass(frozen=True)
class Request:
    """What one command asks about: a kernel tree and where else to look for toolchains."""

    kernel_dir: Path | None
    kernelrelease: str | None
    search: tuple[Path, ...] = ()
    excluded: tuple[Path, ...] = ()  # never take a compiler from here (the module's own tree)
    # May the opt-in auto_install run? Only for a build about to happen (pre-build, env, the
    # kernel hook), never for a report (check, status).
    may_install: bool = False


def is_kernel_release(text: str) -> bool:
    """A name ``/lib/modules/<release>`` can hold: no slashes, no ``..``, no spaces or controls."""
    return kernel_release_shape(text)  # one rule, in kernel.py (also for releases read from trees)


def kernel_location(kernel_dir: Path | None, kernelrelease: str | None) -> Path:
    if kernel_dir is not None:
        return kernel_dir
    return build_dir_for_release(kernelrelease or os.uname().release)


def discover_toolchains(
    request: Request, settings: Settings, cache: Cache, deadline: Deadline, *, bindgens: bool = True
) -> tuple[Discovery, list[Toolchain], list[Toolchain]]:
    found = discover(
        search=(*request.search, *settings.search),
        use_defaults=settings.search_defaults,
        excluded=request.excluded,
    )
    rustcs, tools = probe_all(
        found.rustcs, found.bindgens if bindgens else [], cache, deadline, settings.trusted_dirs
    )
    return found, rustcs, tools


def prepare_toolchains(request: Request, settings: Settings, cache: Cache) -> Prepared:
    """Discover and probe every rustc and bindgen once (``dkms-rustc status``: many kernels)."""
    found, rustcs, tools = discover_toolchains(request, settings, cache, Deadline(PROBE_BUDGET))
    return Prepared(found, rustcs, tools)


def _pin_homes(request: Request, settings: Settings) -> list[Path]:
    homes = [settings.rustup_home] if settings.rustup_home else []
    homes += [directory for directory in (*request.search, *settings.search) if is_rustup_home(directory)]
    if settings.search_defaults or not homes:
        homes += default_rustup_homes(os.environ)
    return list(dict.fromkeys(homes))


def _resolve_pin(
    request: Request,
    settings: Settings,
    kernel: KernelRust,
    rustcs: list[Toolchain],
    cache: Cache,
    deadline: Deadline,
) -> decisions.PinChoice | None:
    pin = applicable_pin(settings.pins, kernel.kernelrelease) if settings.pins else None
    if pin is None:
        return None
    found, problem = resolve_pin_target(pin.target, _pin_homes(request, settings), request.excluded)
    if found is None:
        return decisions.PinChoice(pin, None, problem)
    for toolchain in rustcs:
        if toolchain.binary == found.binary:
            return decisions.PinChoice(pin, toolchain)
    toolchain = probe_rustc(found, cache, deadline, settings.trusted_dirs)
    rustcs.insert(0, toolchain)
    return decisions.PinChoice(pin, toolchain)


def _prove_candidates(
    kernel: KernelRust,
    rustcs: list[Toolchain],
    pinned: decisions.PinChoice | None,
    settings: Settings,
    cache: Cache,
    deadline: Deadline,
) -> dict[Path, ProofResult]:
    proofs: dict[Path, ProofResult] = {}
    if not settings.proof or not (kernel.rust_enabled and kernel.has_metadata and not kernel.missing_crates):
        return proofs
    candidates = decisions.matching_rustcs(kernel, rustcs)
    if pinned is not None and pinned.toolchain in candidates:
        candidates.remove(pinned.toolchain)
        candidates.insert(0, pinned.toolchain)
    for candidate in candidates:
        result = prove(candidate, kernel, cache, deadline, settings.trusted_dirs)
        proofs[candidate.binary] = result
        if result.ok or result.skipped:
            break
    return proofs


def _unreadable_kernel(request: Request, settings: Settings, error: Exception) -> decisions.Decision:
    release = request.kernelrelease
    if request.kernel_dir is not None and release is None:
        reason = Reason.NOT_A_KERNEL_TREE
    else:
        reason = Reason.NO_HEADERS
    return decisions.error_decision(
        str(error), reason, settings.policy, release=release, tree=request.kernel_dir
    )


def worded(decision: decisions.Decision, platform: hints.Platform | None) -> decisions.Decision:
    """``decision`` with its fixes worded; the distribution is detected only when they need it."""
    if decision.refusal is None:
        return decision
    if platform is None and fixes.needs_platform(decision):
        platform = hints.detect_platform()
    return replace(decision, fixes=fixes.fixes_for(decision, platform))


def assess(
    request: Request,
    settings: Settings,
    cache: Cache,
    platform: hints.Platform | None = None,
    prepared: Prepared | None = None,
) -> Assessment:
    """Decide for one kernel. ``prepared`` toolchains are used as they are (no new discovery)."""
    release = request.kernelrelease
    if release is not None and not is_kernel_release(release):
        headline = (
            f"{printable(release)!r} is not a kernel release (like 6.12.0-1-amd64); "
            "check -k/--kernelver or $kernelver"
        )
        return Assessment(decisions.error_decision(headline, Reason.NOT_A_RELEASE, settings.policy))
    tree = kernel_location(request.kernel_dir, release)
    try:
        kernel = read_kernel(tree, cache, release, settings.trusted_dirs)
    except (KernelTreeError, ConfigError) as error:
        return Assessment(worded(_unreadable_kernel(request, settings, error), platform))

    deadline = Deadline(PROBE_BUDGET)
    if prepared is not None:
        found, rustcs, tools = prepared.discovery, list(prepared.rustcs), list(prepared.bindgens)
    else:
        found, rustcs, tools = discover_toolchains(request, settings, cache, deadline)
    pinned = _resolve_pin(request, settings, kernel, rustcs, cache, deadline)
    proofs = _prove_candidates(kernel, rustcs, pinned, settings, cache, Deadline(PROOF_BUDGET))
    situation = decisions.Situation(kernel, tuple(rustcs), tuple(tools), settings, proofs, pinned)
    decision = worded(decisions.decide(situation), platform)
    assessment = Assessment(decision, rustcs, tools, found, proofs, pinned, list(cache.ignored))
    if settings.auto_install != "no" and request.may_install and _installable(decision):
        return _auto_install(request, settings, cache, platform, assessment)
    return assessment


def _installable(decision: decisions.Decision) -> bool:
    """Refused because no installed rustc is the kernel's (not a failed test compile)."""
    return (
        decision.verdict is Verdict.REFUSED
        and decision.refusal is not None
        and decision.refusal.reason in decisions.INSTALLABLE
        and decision.kernel is not None
        and decision.kernel.expected_rustc is not None
    )


def _auto_install(
    request: Request,
    settings: Settings,
    cache: Cache,
    platform: hints.Platform | None,
    first: Assessment,
) -> Assessment:
    """``auto_install = rustup``: install the kernel's official rustc, then decide again."""
    from dkms_rustc import autoinstall, warm

    warm.spoil("auto_install ran")  # it changes the machine: the next run must look again

    kernel = first.decision.kernel
    assert kernel is not None and kernel.expected_rustc is not None
    outcome = autoinstall.install(kernel.expected_rustc, settings)
    if not outcome.installed:
        decision = replace(first.decision, warnings=(*first.decision.warnings, *outcome.lines))
        return replace(first, decision=decision)
    home = outcome.rustup_home
    again = replace(request, search=(*request.search, home) if home is not None else request.search)
    second = assess(again, replace(settings, auto_install="no"), cache, platform)
    decision = replace(second.decision, facts=(*outcome.lines, *second.decision.facts))
    return replace(second, decision=decision)
