"""One assessment, end to end: kernel tree -> candidates -> test compile -> decision.

The commands share this; each step is in its own module and only this one sequences them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dkms_rustc import decision as decisions
from dkms_rustc import hints
from dkms_rustc.cache import Cache
from dkms_rustc.config import Settings
from dkms_rustc.kconfig import ConfigError
from dkms_rustc.kernel import KernelTreeError, build_dir_for_release, read_kernel
from dkms_rustc.probe import Deadline, Toolchain, probe_bindgen, probe_rustc
from dkms_rustc.proof import ProofResult, prove
from dkms_rustc.toolchains import Discovery, discover

PROBE_BUDGET = 8.0  # seconds for examining every candidate together, however many hang


@dataclass
class Assessment:
    decision: decisions.Decision
    rustcs: list[Toolchain] = field(default_factory=list)
    bindgens: list[Toolchain] = field(default_factory=list)
    discovery: Discovery | None = None
    proofs: dict[Path, ProofResult] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    kernel_dir: Path | None
    kernelrelease: str | None
    search: tuple[Path, ...] = ()
    excluded: tuple[Path, ...] = ()  # never take a compiler from here (the module's own tree)
    all_bindgens: bool = True  # examine bindgen even when the verdict cannot use it


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
    trusted = settings.trusted_dirs
    rustcs = [probe_rustc(item, cache, deadline, trusted) for item in found.rustcs]
    tools = [probe_bindgen(item, cache, deadline, trusted) for item in found.bindgens] if bindgens else []
    return found, rustcs, tools


def assess(
    request: Request,
    settings: Settings,
    cache: Cache,
    platform: hints.Platform | None = None,
) -> Assessment:
    deadline = Deadline(PROBE_BUDGET)
    tree = kernel_location(request.kernel_dir, request.kernelrelease)
    release = request.kernelrelease
    try:
        kernel = read_kernel(tree, cache, release)
    except (KernelTreeError, ConfigError) as error:
        platform = platform or hints.detect_platform()
        fix = hints.install_headers(release or (None if request.kernel_dir else os.uname().release), platform)
        return Assessment(decisions.error_decision(str(error), fix, settings.policy))

    found, rustcs, _ = discover_toolchains(request, settings, cache, deadline, bindgens=False)
    proofs: dict[Path, ProofResult] = {}
    if kernel.rust_enabled and kernel.has_metadata and not kernel.missing_crates:
        for candidate in decisions.matching_rustcs(kernel, rustcs):
            if not settings.proof:
                break
            result = prove(candidate, kernel, cache, deadline, settings.trusted_dirs)
            proofs[candidate.binary] = result
            if result.ok or result.skipped:
                break
    need_bindgens = (
        request.all_bindgens
        or any(result.ok or result.skipped for result in proofs.values())
        or (not settings.proof and decisions.matching_rustcs(kernel, rustcs))
    )
    trusted = settings.trusted_dirs
    tools = (
        [probe_bindgen(item, cache, deadline, trusted) for item in found.bindgens] if need_bindgens else []
    )
    # The distribution is only needed to word a fix; detecting it costs an import, so a
    # selection that needs no fix is decided without it.
    verdict = decisions.decide(kernel, rustcs, tools, settings, proofs, platform or _UNDETECTED)
    if platform is None and verdict.fixes:
        verdict = decisions.decide(kernel, rustcs, tools, settings, proofs, hints.detect_platform())
    return Assessment(verdict, rustcs, tools, found, proofs)


_UNDETECTED = hints.Platform(id="unknown")
