# SPDX-License-Identifier: GPL-2.0-or-later
"""decide() from hand-built values: every step and branch, no toolchain, no file, milliseconds.

The values are what the earlier steps would have produced (kernel.py's KernelRust, probe.py's
Toolchain, proof.py's ProofResult); the end-to-end tests check those steps against real trees
and real compilers. Each case here names the situation, and what must come out of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from dkms_rustc import fixes
from dkms_rustc.config import Pin, Policy, Settings
from dkms_rustc.decision import (
    Decision,
    PinChoice,
    Reason,
    Situation,
    Verdict,
    choose_bindgen,
    decide,
    error_decision,
)
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.hints import Platform
from dkms_rustc.kernel import Artifact, KernelRust
from dkms_rustc.proof import ProofOutcome, ProofResult
from dkms_rustc.toolchains import CandidateKind, Found, Toolchain

STABLE = "rustc 1.95.0 (59807616e 2026-04-14)"
DEBIAN = "rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)"
NIGHTLY = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)"
TREE = Path("/lib/modules/7.2.0-1-amd64/build")
DEBIAN_12 = Platform("debian", (), "12", "bookworm")


def kernel(expected: str | None = STABLE, **changes: Any) -> KernelRust:
    """A Rust kernel whose metadata ``expected`` wrote (``None``: no metadata at all)."""
    rust_dir = TREE / "rust"
    artifacts = (Artifact(rust_dir / "libkernel.rmeta", expected),) if expected else ()
    value = KernelRust(
        tree=TREE,
        roots=(TREE,),
        kernelrelease="7.2.0-1-amd64",
        config_path=TREE / "include" / "config" / "auto.conf",
        rust_enabled=True,
        config_rustc_text=expected,
        config_bindgen_text="bindgen 0.72.1",
        config_rustc_number=None,
        config_llvm_number=None,
        rust_dir=rust_dir if expected else None,
        artifacts=artifacts,
        expected_rustc=expected,
        expected_source=str(rust_dir / "libkernel.rmeta") if expected else None,
        required_crates=("kernel",),
        crates_source=TREE / "scripts" / "Makefile.build",
        missing_crates=(),
        min_rustc="1.85.0",
        min_bindgen="0.71.1",
        minimums_source="built-in table for Linux 7.1+",
        target_spec=None,
        target_triple=None,
    )
    return replace(value, **changes)


def rustc(path: str, version: str | None, **changes: Any) -> Toolchain:
    found = Found(CandidateKind.RUSTC, Path(path), Path(path), ("test",))
    release = version.split()[1] if version else None
    return replace(Toolchain(found, version, release, learned_from="test"), **changes)


def bindgen(path: str, release: str, **changes: Any) -> Toolchain:
    found = Found(CandidateKind.BINDGEN, Path(path), Path(path), ("test",))
    tool = Toolchain(found, f"bindgen {release}", release, learned_from="test")
    return replace(tool, **changes)


def untrusted(tool: Toolchain, why: str = "/home/u is owned by uid 1000") -> Toolchain:
    return replace(tool, skipped=f"not trusted: {why}", untrusted=why)


def passed() -> ProofResult:
    return ProofResult(ProofOutcome.PASSED, "a test crate compiled against the kernel's metadata")


def failed(code: str) -> ProofResult:
    return ProofResult(
        ProofOutcome.FAILED, f"test compile against the kernel's metadata failed: error[{code}]: x", code=code
    )


def crashed() -> ProofResult:
    return ProofResult(
        ProofOutcome.FAILED, "test compile failed: rustc crashed (SIGSEGV)", compiler_failed=True
    )


def skipped() -> ProofResult:
    return ProofResult(ProofOutcome.SKIPPED, "test compile skipped: the kernel tree is not trusted (x)")


GOOD = rustc("/usr/bin/rustc", STABLE)
OTHER = rustc("/opt/other/bin/rustc", STABLE)
WRONG = rustc("/usr/bin/rustc-1.96", DEBIAN)
BINDGEN = bindgen("/usr/bin/bindgen", "0.72.1")


@dataclass
class Case:
    """One situation and what decide() must make of it."""

    name: str
    kernel: KernelRust = field(default_factory=kernel)
    rustcs: tuple[Toolchain, ...] = (GOOD,)
    bindgens: tuple[Toolchain, ...] = (BINDGEN,)
    settings: Settings = field(default_factory=Settings)
    proofs: Mapping[Path, ProofResult] = field(default_factory=dict)
    pin: PinChoice | None = None
    # expectations
    verdict: Verdict = Verdict.OK
    reason: Reason | None = None
    exit_code: ExitCode = ExitCode.OK
    rustc: Path | None = None
    headline: str = ""  # a part of it
    facts: tuple[str, ...] = ()  # parts of facts, each in some fact
    warnings: tuple[str, ...] = ()  # parts of warnings
    no_warning: str | None = None  # must be in no warning
    make_args: tuple[str, ...] | None = None
    applied: Policy | None = None

    def decide(self) -> Decision:
        situation = Situation(self.kernel, self.rustcs, self.bindgens, self.settings, self.proofs, self.pin)
        return decide(situation)


def _pin(target: Toolchain | None, problem: str | None = None) -> PinChoice:
    return PinChoice(
        Pin("7.2.*", str(target.path) if target else "/opt/x", "/etc/dkms-rustc.conf:3"), target, problem
    )


WARN = Settings(policy=Policy.WARN)
FALLBACK = Settings(policy=Policy.FALLBACK, fallback_make_args=("HELLO_C_ONLY=y",))
FALLBACK_EMPTY = Settings(policy=Policy.FALLBACK)
STOPPED = "; the build is stopped before compiling"

CASES = [
    # 1. a kernel without Rust
    Case(
        "no Rust",
        kernel=kernel(rust_enabled=False),
        verdict=Verdict.NO_RUST,
        reason=Reason.NO_RUST,
        exit_code=ExitCode.NO_RUST,
        headline="is built without Rust support",
        facts=("configuration read from",),
    ),
    Case(
        "no Rust, fallback builds the C variant",
        kernel=kernel(rust_enabled=False),
        settings=FALLBACK,
        verdict=Verdict.NO_RUST,
        reason=Reason.NO_RUST,
        applied=Policy.FALLBACK,
        make_args=("HELLO_C_ONLY=y",),
        warnings=("policy fallback: the module is built with HELLO_C_ONLY=y",),
    ),
    Case(
        "no Rust, warn changes nothing",
        kernel=kernel(rust_enabled=False),
        settings=WARN,
        verdict=Verdict.NO_RUST,
        reason=Reason.NO_RUST,
        exit_code=ExitCode.NO_RUST,
        no_warning="policy",
    ),
    Case(
        "no Rust, fallback without arguments changes nothing",
        kernel=kernel(rust_enabled=False),
        settings=FALLBACK_EMPTY,
        verdict=Verdict.NO_RUST,
        reason=Reason.NO_RUST,
        exit_code=ExitCode.NO_RUST,
        no_warning="policy",
    ),
    # 2. headers without (complete) metadata
    Case(
        "no metadata",
        kernel=kernel(None, config_rustc_text=STABLE, expected_rustc=STABLE),
        verdict=Verdict.NO_METADATA,
        reason=Reason.NO_METADATA,
        exit_code=ExitCode.NO_METADATA,
        headline="carry no Rust metadata",
    ),
    Case(
        "incomplete metadata",
        kernel=kernel(missing_crates=("pin_init",)),
        verdict=Verdict.NO_METADATA,
        reason=Reason.INCOMPLETE_METADATA,
        exit_code=ExitCode.NO_METADATA,
        headline="lacks libpin_init.rmeta",
    ),
    Case(
        "no metadata, warn lets make run",
        kernel=kernel(None),
        settings=WARN,
        verdict=Verdict.NO_METADATA,
        reason=Reason.NO_METADATA,
        applied=Policy.WARN,
        warnings=("policy warn",),
    ),
    # 3. the rustc
    Case("the match, untested", rustc=GOOD.binary, facts=("selected rustc: /usr/bin/rustc (rustc 1.95.0",)),
    Case(
        "the match, tested",
        proofs={GOOD.binary: passed()},
        rustc=GOOD.binary,
        facts=("proof: a test crate compiled",),
    ),
    Case(
        "the match, test skipped",
        proofs={GOOD.binary: skipped()},
        rustc=GOOD.binary,
        warnings=("test compile skipped",),
    ),
    Case(
        "the first match failed its test, the second passed",
        rustcs=(GOOD, OTHER),
        proofs={GOOD.binary: failed("E0463"), OTHER.binary: passed()},
        rustc=OTHER.binary,
    ),
    Case(
        "another distribution's build of the same release is not a match",
        kernel=kernel(DEBIAN),
        rustcs=(GOOD,),
        verdict=Verdict.REFUSED,
        reason=Reason.NO_MATCH,
        exit_code=ExitCode.REFUSED,
        headline=f"no installed rustc matches kernel 7.2.0-1-amd64: it needs {DEBIAN}{STOPPED}",
        facts=("candidate /usr/bin/rustc: rustc 1.95.0",),
    ),
    Case(
        "nothing found",
        rustcs=(),
        verdict=Verdict.REFUSED,
        reason=Reason.NO_MATCH,
        exit_code=ExitCode.REFUSED,
        facts=("candidates: no rustc found (looked on PATH",),
    ),
    Case(
        "nothing found where search_defaults = no allowed looking",
        rustcs=(),
        settings=Settings(search_defaults=False, origins={"search_defaults": "/etc/dkms-rustc.conf:1"}),
        verdict=Verdict.REFUSED,
        reason=Reason.NO_MATCH,
        exit_code=ExitCode.REFUSED,
        facts=("were not searched (search_defaults = no, /etc/dkms-rustc.conf:1)",),
    ),
    Case(
        "only an untrusted copy matches",
        rustcs=(untrusted(rustc("/home/u/.rustup/toolchains/1.95.0/bin/rustc", STABLE)), WRONG),
        verdict=Verdict.REFUSED,
        reason=Reason.MATCH_UNTRUSTED,
        exit_code=ExitCode.REFUSED,
        headline="are not trusted to run as root" + STOPPED,
    ),
    Case(
        "the match failed its test compile: the compiler's fault",
        proofs={GOOD.binary: failed("E0514")},
        verdict=Verdict.REFUSED,
        reason=Reason.COMPILER_FAILED,
        exit_code=ExitCode.REFUSED,
        headline="the matching compiler failed the test compile against the kernel's metadata" + STOPPED,
        facts=("test compile: /usr/bin/rustc: test compile against",),
    ),
    Case(
        "the match crashed in its test compile",
        proofs={GOOD.binary: crashed()},
        verdict=Verdict.REFUSED,
        reason=Reason.COMPILER_FAILED,
        exit_code=ExitCode.REFUSED,
    ),
    Case(
        "the match failed its test compile: the metadata's fault",
        proofs={GOOD.binary: failed("E0463")},
        verdict=Verdict.REFUSED,
        reason=Reason.METADATA_UNLOADABLE,
        exit_code=ExitCode.REFUSED,
    ),
    # policies on a refusal
    Case(
        "no match, warn",
        rustcs=(WRONG,),
        settings=WARN,
        verdict=Verdict.REFUSED,
        reason=Reason.NO_MATCH,
        applied=Policy.WARN,
        make_args=(),
        warnings=("policy warn: the build goes on with kbuild's default rustc",),
    ),
    Case(
        "no match, fallback",
        rustcs=(WRONG,),
        settings=FALLBACK,
        verdict=Verdict.REFUSED,
        reason=Reason.NO_MATCH,
        applied=Policy.FALLBACK,
        make_args=("HELLO_C_ONLY=y",),
    ),
    Case(
        "no match, fallback without arguments refuses",
        rustcs=(WRONG,),
        settings=FALLBACK_EMPTY,
        verdict=Verdict.REFUSED,
        reason=Reason.NO_MATCH,
        exit_code=ExitCode.REFUSED,
        headline=STOPPED,
        warnings=("fallback_make_args is empty: refusing instead",),
    ),
    # pins
    Case(
        "the pin is selected",
        rustcs=(OTHER, GOOD),
        pin=_pin(GOOD),
        rustc=GOOD.binary,
        facts=("selected because of pin 7.2.* /usr/bin/rustc (/etc/dkms-rustc.conf:3)",),
    ),
    Case(
        "the pin's test was skipped: selected, with the note",
        pin=_pin(GOOD),
        proofs={GOOD.binary: skipped()},
        rustc=GOOD.binary,
        warnings=("test compile skipped",),
    ),
    Case(
        "the pin's target does not exist",
        pin=_pin(None, "/opt/x does not exist"),
        rustc=GOOD.binary,
        warnings=(
            "pin 7.2.* /opt/x (/etc/dkms-rustc.conf:3) refused: /opt/x does not exist; choosing as if",
        ),
    ),
    Case(
        "the pin is not trusted",
        pin=_pin(untrusted(OTHER)),
        rustc=GOOD.binary,
        warnings=("refused: /opt/other/bin/rustc: not trusted",),
    ),
    Case(
        "the pin is another compiler",
        pin=_pin(WRONG),
        rustcs=(WRONG, GOOD),
        rustc=GOOD.binary,
        warnings=(f"refused: /usr/bin/rustc-1.96 is {DEBIAN}, but the kernel needs {STABLE}",),
    ),
    Case(
        "the pin failed its test; another match passed",
        pin=_pin(OTHER),
        rustcs=(OTHER, GOOD),
        proofs={OTHER.binary: failed("E0514"), GOOD.binary: passed()},
        rustc=GOOD.binary,
        warnings=("refused: /opt/other/bin/rustc failed the test compile",),
    ),
    Case(
        "the pin failed its test and is the only match",
        pin=_pin(OTHER),
        rustcs=(OTHER,),
        proofs={OTHER.binary: failed("E0514")},
        verdict=Verdict.REFUSED,
        reason=Reason.COMPILER_FAILED,
        exit_code=ExitCode.REFUSED,
        facts=("test compile: /opt/other/bin/rustc:",),
    ),
    # bindgen
    Case(
        "the kernel's own bindgen",
        bindgens=(bindgen("/usr/bin/bindgen-0.73", "0.73.0"), BINDGEN),
        make_args=("RUSTC=/usr/bin/rustc", "HOSTRUSTC=/usr/bin/rustc", "BINDGEN=/usr/bin/bindgen"),
        no_warning="bindgen",
    ),
    Case(
        "the newest bindgen at or above the minimum",
        bindgens=(bindgen("/usr/bin/bindgen-0.71", "0.71.1"), bindgen("/usr/bin/bindgen-0.73", "0.73.0")),
        warnings=(
            "bindgen 0.73.0 (/usr/bin/bindgen-0.73) is used; the kernel was configured with bindgen 0.72.1",
        ),
    ),
    Case(
        "bindgens compare as versions, not text: 0.70 is newer than 0.9",
        kernel=kernel(config_bindgen_text=None, min_bindgen="0.65.1"),
        bindgens=(bindgen("/usr/bin/bindgen-0.9", "0.9.0"), bindgen("/usr/bin/bindgen-0.70", "0.70.0")),
        warnings=("bindgen 0.70.0",),
    ),
    Case(
        "no bindgen at or above the minimum: a warning",
        bindgens=(bindgen("/usr/bin/bindgen-0.60", "0.60.1"),),
        make_args=("RUSTC=/usr/bin/rustc", "HOSTRUSTC=/usr/bin/rustc"),
        warnings=(
            "no usable bindgen found (the kernel needs at least 0.71.1; it was configured with 0.72.1)",
        ),
    ),
    Case(
        "no bindgen, and require_bindgen",
        bindgens=(untrusted(bindgen("/home/u/.cargo/bin/bindgen", "0.72.1")),),
        settings=Settings(require_bindgen=True),
        verdict=Verdict.REFUSED,
        reason=Reason.NO_BINDGEN,
        exit_code=ExitCode.REFUSED,
        headline="no suitable bindgen for kernel 7.2.0-1-amd64",
        facts=("selected rustc: /usr/bin/rustc",),
    ),
    # the selection's other parts
    Case(
        "library sources go to make",
        rustcs=(replace(GOOD, rust_src=Path("/usr/src/rustc-1.95.0/library")),),
        make_args=(
            "RUSTC=/usr/bin/rustc",
            "HOSTRUSTC=/usr/bin/rustc",
            "BINDGEN=/usr/bin/bindgen",
            "RUST_LIB_SRC=/usr/src/rustc-1.95.0/library",
        ),
    ),
    Case(
        "another LLVM than the kernel's",
        kernel=kernel(config_llvm_number=190107),
        rustcs=(replace(GOOD, llvm_version="22.1.2"),),
        warnings=("uses LLVM 22.1.2, the kernel was built with LLVM 19",),
    ),
    Case(
        "the same LLVM",
        kernel=kernel(config_llvm_number=220102),
        rustcs=(replace(GOOD, llvm_version="22.1.2"),),
        no_warning="LLVM",
    ),
    Case(
        "kernel notes come first",
        kernel=kernel(notes=("the configuration records 'x' but the metadata was written by 'y'",)),
        warnings=("the configuration records",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decide(case: Case) -> None:
    decision = case.decide()
    assert decision.verdict is case.verdict
    assert (decision.refusal.reason if decision.refusal else None) is case.reason
    assert decision.exit_code is case.exit_code
    assert decision.policy_applied is case.applied
    assert decision.build_may_proceed == (case.verdict is Verdict.OK or case.applied is not None)
    if case.verdict is Verdict.OK:
        assert decision.rustc is not None and decision.rustc.binary == (case.rustc or GOOD.binary)
        assert (
            decision.headline == f"kernel 7.2.0-1-amd64: building with {STABLE} from {decision.rustc.binary}"
        )
    else:
        assert decision.rustc is None
    assert case.headline in decision.headline
    if case.applied is not None:
        assert STOPPED not in decision.headline  # the build goes on: it must not say it stops
    for part in case.facts:
        assert any(part in fact for fact in decision.facts), (part, decision.facts)
    for part in case.warnings:
        assert any(part in warning for warning in decision.warnings), (part, decision.warnings)
    if case.no_warning:
        assert not any(case.no_warning in warning for warning in decision.warnings), decision.warnings
    if case.make_args is not None:
        assert decision.make_args == case.make_args
    assert decision.fixes == ()  # worded afterwards, from the refusal


def test_the_untrusted_copy_is_named_for_the_fix() -> None:
    copy = untrusted(rustc("/home/u/.rustup/toolchains/1.95.0/bin/rustc", STABLE, sysroot=Path("/home/u/tc")))
    unknown = untrusted(rustc("/home/u/bin/rustc", None))
    decision = Case("x", rustcs=(copy, unknown)).decide()
    assert decision.refusal is not None and decision.refusal.refused_copies == (copy,)
    words = fixes.fixes_for(decision, DEBIAN_12)
    assert words[0].startswith("as root: rustup toolchain install 1.95.0 --profile minimal")
    assert any(
        f"{copy.path} is not run as root because /home/u is owned by uid 1000" in line for line in words
    )
    assert any("cp -a /home/u/tc /opt/dkms-rustc/tc" in line for line in words)
    # Without a matching copy, the copies whose version nobody could read are explained instead.
    decision = Case("x", kernel=kernel(DEBIAN), rustcs=(unknown,)).decide()
    assert decision.refusal is not None and decision.refusal.refused_copies == (unknown,)


def test_choose_bindgen_prefers_the_kernels_own_version() -> None:
    tools = (bindgen("/a", "0.73.0"), bindgen("/b", "0.72.1"))
    assert choose_bindgen(kernel(), tools) == (tools[1], None)


FIXES = [
    (Case("x", kernel=kernel(rust_enabled=False)), None, "nothing to fix for this module"),
    (
        Case("x", kernel=kernel(None)),
        DEBIAN_12,
        "Debian's linux-headers-7.2.0-1-amd64 carries no Rust metadata",
    ),
    (Case("x", kernel=kernel(missing_crates=("ffi",))), DEBIAN_12, "carries no Rust metadata"),
    (Case("x", proofs={GOOD.binary: failed("E0514")}), None, "the compiler itself failed"),
    (
        Case("x", proofs={GOOD.binary: failed("E0463")}),
        None,
        f"metadata in {TREE / 'rust'} could not be loaded",
    ),
    (Case("x", kernel=kernel(DEBIAN)), DEBIAN_12, "apt install rustc-web rust-web-src"),
    (
        Case("x", bindgens=(), settings=Settings(require_bindgen=True)),
        Platform("ubuntu", ("debian",), "24.04", "noble"),
        "apt install bindgen-0.72",
    ),
]


@pytest.mark.parametrize(("case", "platform", "first"), FIXES, ids=[str(i) for i in range(len(FIXES))])
def test_fixes_are_worded_from_the_refusal(case: Case, platform: Platform | None, first: str) -> None:
    decision = case.decide()
    assert fixes.needs_platform(decision) == (platform is not None)
    words = fixes.fixes_for(decision, platform)
    assert any(first in line for line in words), words


def test_a_fallback_build_needs_no_fix() -> None:
    decision = Case("x", kernel=kernel(rust_enabled=False), settings=FALLBACK).decide()
    assert fixes.fixes_for(decision, None) == ()


def test_a_selection_has_no_fix_and_needs_no_platform() -> None:
    decision = Case("x").decide()
    assert decision.refusal is None and not fixes.needs_platform(decision)
    assert fixes.fixes_for(decision, None) == ()


def test_a_fix_naming_a_package_needs_the_platform() -> None:
    with pytest.raises(ValueError, match="names a distribution's package"):
        fixes.fixes_for(Case("x", kernel=kernel(DEBIAN)).decide(), None)


@pytest.mark.parametrize(
    ("reason", "tree", "release", "first"),
    [
        (Reason.NOT_A_KERNEL_TREE, Path("/tmp/x"), None, "point --kernel-dir at a kernel build tree"),
        (Reason.NO_HEADERS, None, "6.12.0-1-amd64", "apt install linux-headers-6.12.0-1-amd64"),
    ],
)
def test_errors_are_worded_too(reason: Reason, tree: Path | None, release: str | None, first: str) -> None:
    decision = error_decision("headline", reason, tree=tree, release=release)
    assert decision.verdict is Verdict.ERROR and decision.exit_code is ExitCode.ERROR
    assert first in fixes.fixes_for(decision, DEBIAN_12)[0]


def test_every_reason_is_reached_by_a_case() -> None:
    reached = {case.reason for case in CASES} | {Reason.NOT_A_KERNEL_TREE, Reason.NO_HEADERS}
    errors_only = {Reason.NOT_A_RELEASE, Reason.CONFIGURATION}  # engine and the commands make these
    assert set(Reason) - errors_only <= reached
