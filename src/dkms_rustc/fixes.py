"""The fix for a refusal, worded from its structured reason for the running distribution.

:func:`dkms_rustc.decision.decide` says why a build cannot go on (a :class:`Refusal`); this
module turns that into the lines an administrator types. Only reasons whose fix differs by
distribution need the :class:`~dkms_rustc.hints.Platform` (:data:`NEEDS_PLATFORM`), so a
selection, or a kernel without Rust, never pays for detecting it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dkms_rustc import hints
from dkms_rustc.decision import Decision, Reason, Refusal
from dkms_rustc.toolchains import Toolchain
from dkms_rustc.versions import parse_bindgen_version

NEEDS_PLATFORM = frozenset(
    {
        Reason.NO_METADATA,
        Reason.INCOMPLETE_METADATA,
        Reason.NO_MATCH,
        Reason.MATCH_UNTRUSTED,
        Reason.NO_BINDGEN,
        Reason.NO_HEADERS,
    }
)

_NO_RUST = (
    'nothing to fix for this module: add BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST" to its dkms.conf '
    "so DKMS skips such kernels quietly"
)
_COMPILER_FAILED = (
    "the compiler itself failed (it crashed or hung, or it is not the build its own files say it "
    "is: an interrupted upgrade?): reinstall that toolchain, then run the build again"
)


def _details(tools: Sequence[Toolchain]) -> list[tuple[Path, Path | None, str]]:
    return [(tool.path, tool.sysroot, tool.untrusted or "") for tool in tools]


def _worded_for_platform(decision: Decision, refusal: Refusal, platform: hints.Platform) -> list[str]:
    """The fixes that name a distribution's package or command (:data:`NEEDS_PLATFORM`)."""
    reason = refusal.reason
    kernel = decision.kernel
    if reason is Reason.NO_HEADERS or kernel is None:
        return hints.install_headers(refusal.release or os.uname().release, platform)
    if reason in (Reason.NO_METADATA, Reason.INCOMPLETE_METADATA):
        return hints.install_metadata(kernel.kernelrelease, platform)
    if reason is Reason.NO_BINDGEN:
        wanted = parse_bindgen_version(kernel.config_bindgen_text or "")
        copies = hints.root_owned_toolchain(_details(refusal.refused_copies), kind="bindgen")
        return hints.install_bindgen(wanted, kernel.min_bindgen, platform) + copies
    assert kernel.expected_rustc is not None  # NO_MATCH, MATCH_UNTRUSTED
    copies = hints.root_owned_toolchain(_details(refusal.refused_copies))
    return hints.install_rustc(kernel.expected_rustc, platform) + copies


def _worded(decision: Decision, refusal: Refusal) -> list[str]:
    """The fixes that are the same everywhere."""
    reason = refusal.reason
    if reason is Reason.NO_RUST:
        # A C-only variant built by the fallback policy needs nothing either.
        return [] if decision.policy_applied is not None else [_NO_RUST]
    if reason is Reason.COMPILER_FAILED:
        return [_COMPILER_FAILED]
    if reason is Reason.METADATA_UNLOADABLE:
        rust_dir = decision.kernel.rust_dir if decision.kernel else None
        return [
            f"the kernel's Rust metadata in {rust_dir} could not be loaded (damaged or "
            "incomplete headers?): reinstall the package that provides it, then run the build again"
        ]
    if reason is Reason.NOT_A_KERNEL_TREE:
        return [
            "point --kernel-dir at a kernel build tree (such as /lib/modules/<release>/build); "
            f"{refusal.tree} is not one"
        ]
    return []  # NOT_A_RELEASE, CONFIGURATION: the headline says what to correct


def needs_platform(decision: Decision) -> bool:
    """Does the fix for ``decision`` name a distribution's package or command?"""
    return decision.refusal is not None and decision.refusal.reason in NEEDS_PLATFORM


def fixes_for(decision: Decision, platform: hints.Platform | None) -> tuple[str, ...]:
    """What to do about ``decision``'s refusal (nothing when it has none); ``platform`` is
    needed only when :func:`needs_platform` says so."""
    refusal = decision.refusal
    if refusal is None:
        return ()
    if refusal.reason not in NEEDS_PLATFORM:
        return tuple(_worded(decision, refusal))
    if platform is None:
        raise ValueError(f"the fix for {refusal.reason} names a distribution's package: give the platform")
    return tuple(_worded_for_platform(decision, refusal, platform))
