"""The decision: which rustc and bindgen a module build gets, or why it must not start.

:func:`decide` is pure and reads like the checks it makes, one named step each:

1. a kernel without Rust: nothing to build against (:func:`_without_rust`);
2. headers without (complete) Rust metadata: nothing can be built (:func:`_metadata_refusal`);
3. the rustc: the pinned one if it is the kernel's and passed its test compile, else the
   first matching candidate that passed (:func:`_pin_step`, :func:`_candidate_step`);
4. no rustc: refuse, saying whether nothing matches, only untrusted copies match, or the
   match failed its test compile (:func:`_rustc_refusal`);
5. bindgen: the kernel's own version, else the newest at or above its minimum
   (:func:`choose_bindgen`); refuse only when ``require_bindgen`` asks for that;
6. the selection, with its make arguments (:func:`_selected`).

A refusal carries a structured :class:`Refusal`; the ``warn`` and ``fallback`` policies can
let the build go on anyway (:func:`_refused`). The fixes are worded afterwards from the
refusal, for the running distribution (:func:`dkms_rustc.hints.fixes_for`), so this module
needs no distribution and does no I/O. Matching is string equality of the whole compiler
version string, the test rustc itself applies; numbers alone never match.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dkms_rustc.config import Pin, Policy, Settings
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.kernel import KernelRust
from dkms_rustc.proof import ProofResult
from dkms_rustc.toolchains import Toolchain
from dkms_rustc.versions import at_least, parse_bindgen_version, version_key


class Verdict(str, enum.Enum):
    """The outcome for one kernel, each with its exit status."""

    OK = "ok"
    REFUSED = "refused"
    NO_RUST = "no-rust"
    NO_METADATA = "no-metadata"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def exit_code(self) -> ExitCode:
        return _VERDICT_EXIT_CODES[self]


_VERDICT_EXIT_CODES = {
    Verdict.OK: ExitCode.OK,
    Verdict.REFUSED: ExitCode.REFUSED,
    Verdict.NO_RUST: ExitCode.NO_RUST,
    Verdict.NO_METADATA: ExitCode.NO_METADATA,
    Verdict.ERROR: ExitCode.ERROR,
}


class Reason(str, enum.Enum):
    """Why a module build cannot go on as asked: what the fix is worded from."""

    NO_RUST = "no-rust"  # the kernel is built without Rust
    NO_METADATA = "no-metadata"  # its headers have no rust/*.rmeta
    INCOMPLETE_METADATA = "incomplete-metadata"  # rust/ lacks crates modules link against
    NO_MATCH = "no-match"  # no installed rustc is the kernel's compiler
    MATCH_UNTRUSTED = "match-untrusted"  # only copies root must not run are
    COMPILER_FAILED = "compiler-failed"  # the match failed its test compile; the compiler's fault
    METADATA_UNLOADABLE = "metadata-unloadable"  # the match failed its test compile on the metadata
    NO_BINDGEN = "no-bindgen"  # require_bindgen, and no suitable bindgen
    NOT_A_RELEASE = "not-a-release"  # -k/$kernelver is not a kernel release
    NOT_A_KERNEL_TREE = "not-a-kernel-tree"  # --kernel-dir names no kernel build tree
    NO_HEADERS = "no-headers"  # the release's build tree is missing or unusable
    CONFIGURATION = "configuration"  # dkms-rustc's own configuration file is unusable

    def __str__(self) -> str:
        return self.value


# A refused build whose fix is another rustc: what auto_install can do something about.
INSTALLABLE = frozenset({Reason.NO_MATCH, Reason.MATCH_UNTRUSTED})


@dataclass(frozen=True)
class Refusal:
    """Why the build cannot go on as asked, with what the fix needs to name."""

    reason: Reason
    refused_copies: tuple[Toolchain, ...] = ()  # candidates not trusted to run as root, to explain
    release: str | None = None  # for a kernel that could not be read: the release asked about
    tree: Path | None = None  # and the tree looked at


@dataclass(frozen=True)
class Decision:
    """The outcome for one kernel: the verdict, the make arguments, and every line to print."""

    verdict: Verdict
    headline: str
    kernel: KernelRust | None = None
    rustc: Toolchain | None = None
    bindgen: Toolchain | None = None
    make_args: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()  # worded afterwards from ``refusal`` (hints.fixes_for)
    policy: Policy = Policy.SELECT
    policy_applied: Policy | None = None  # WARN or FALLBACK when the policy changed the outcome
    matching: tuple[Toolchain, ...] = ()
    refusal: Refusal | None = None

    @property
    def exit_code(self) -> ExitCode:
        """The verdict's exit status; OK when a warn or fallback policy lets the build go on."""
        return ExitCode.OK if self.policy_applied is not None else self.verdict.exit_code

    @property
    def build_may_proceed(self) -> bool:
        return self.verdict is Verdict.OK or self.policy_applied is not None


@dataclass(frozen=True)
class PinChoice:
    """The pin that applies to this kernel and what its target turned out to be."""

    pin: Pin
    toolchain: Toolchain | None  # None when the target could not even be found
    problem: str | None = None  # why not, when toolchain is None

    @property
    def label(self) -> str:
        return f"pin {self.pin.pattern} {self.pin.target} ({self.pin.where})"


@dataclass(frozen=True)
class Situation:
    """Everything :func:`decide` looks at, gathered before it runs."""

    kernel: KernelRust
    rustcs: tuple[Toolchain, ...]
    bindgens: tuple[Toolchain, ...]
    settings: Settings
    proofs: Mapping[Path, ProofResult]  # test compiles run, by compiler binary
    pinned: PinChoice | None = None


@dataclass(frozen=True)
class _Lines:
    """Facts and warnings a step contributes, in order."""

    facts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __add__(self, other: _Lines) -> _Lines:
        return _Lines(self.facts + other.facts, self.warnings + other.warnings)


@dataclass(frozen=True)
class _RustcChoice:
    """What the rustc steps found: the selection (or None) and what the refusal would say."""

    rustc: Toolchain | None
    lines: _Lines
    failed_proofs: tuple[str, ...] = ()  # "<binary>: <what the test compile said>"
    compiler_at_fault: bool = False


def matches(kernel: KernelRust, toolchain: Toolchain) -> bool:
    """True when ``toolchain`` is the compiler that wrote the kernel's metadata."""
    return (
        toolchain.usable
        and toolchain.version_text is not None
        and toolchain.version_text == kernel.expected_rustc
    )


def matching_rustcs(kernel: KernelRust, rustcs: Sequence[Toolchain]) -> list[Toolchain]:
    return [toolchain for toolchain in rustcs if matches(kernel, toolchain)]


def choose_bindgen(kernel: KernelRust, bindgens: Sequence[Toolchain]) -> tuple[Toolchain | None, str | None]:
    """The kernel's own bindgen version if installed, else the newest at or above the minimum."""
    usable = [tool for tool in bindgens if tool.usable and tool.release]
    wanted = parse_bindgen_version(kernel.config_bindgen_text or "")
    for tool in usable:
        if wanted and tool.release == wanted:
            return tool, None
    acceptable = [tool for tool in usable if at_least(tool.release or "", kernel.min_bindgen)]
    if not acceptable:
        return None, None
    best = max(acceptable, key=lambda tool: version_key(tool.release or ""))
    note = (
        f"bindgen {best.release} ({best.binary}) is used; the kernel was configured with "
        f"{kernel.config_bindgen_text or 'an unrecorded bindgen'}"
        f"{f' and needs at least {kernel.min_bindgen}' if kernel.min_bindgen else ''}"
    )
    return best, note


def decide(situation: Situation) -> Decision:
    """Select the toolchain for a module build against the kernel, or refuse and say why.

    A pin is a preference, never an override: its rustc is selected only when it is the
    kernel's compiler and passes the test compile; otherwise the pin is refused with the
    reason and the choice is made as if there were no pin.
    """
    kernel = situation.kernel
    if not kernel.rust_enabled:
        return _without_rust(situation)
    if not kernel.has_metadata or kernel.missing_crates:
        return _metadata_refusal(situation)
    choice = _rustc_choice(situation)
    if choice.rustc is None:
        return _rustc_refusal(situation, choice)
    return _with_bindgen(situation, choice, choice.rustc)


def _name(kernel: KernelRust) -> str:
    return kernel.kernelrelease or str(kernel.tree)


def _kernel_facts(kernel: KernelRust) -> tuple[str, ...]:
    facts = [
        f"kernel build tree: {kernel.tree}" + (f" ({kernel.kernelrelease})" if kernel.kernelrelease else "")
    ]
    if kernel.expected_rustc:
        facts.append(f"kernel needs: {kernel.expected_rustc} (read from {kernel.expected_source})")
    if kernel.config_bindgen_text:
        facts.append(f"kernel was configured with: {kernel.config_bindgen_text}")
    return tuple(facts)


def _without_rust(situation: Situation) -> Decision:
    kernel = situation.kernel
    headline = (
        f"kernel {_name(kernel)} is built without Rust support (CONFIG_RUST is not set): "
        "Rust modules cannot be built for it and are skipped"
    )
    lines = _Lines(
        (f"kernel build tree: {kernel.tree}", f"configuration read from {kernel.config_path}"), kernel.notes
    )
    if situation.settings.policy is Policy.FALLBACK and situation.settings.fallback_make_args:
        # A module with a C-only variant can still be built for this kernel.
        return _refused(situation, Verdict.NO_RUST, Reason.NO_RUST, headline, lines)
    return _refused(situation, Verdict.NO_RUST, Reason.NO_RUST, headline, lines, soften=False)


def _metadata_refusal(situation: Situation) -> Decision:
    kernel = situation.kernel
    if not kernel.has_metadata:
        where = kernel.rust_dir or (kernel.tree / "rust")
        reason = Reason.NO_METADATA
        headline = (
            f"kernel {_name(kernel)} has Rust enabled but its headers carry no Rust metadata ({where} "
            "has no readable .rmeta files): no out-of-tree Rust module can be built against it"
        )
    else:
        missing = ", ".join(f"lib{crate}.rmeta" for crate in kernel.missing_crates)
        reason = Reason.INCOMPLETE_METADATA
        headline = (
            f"kernel {_name(kernel)}'s Rust metadata is incomplete: {kernel.rust_dir} lacks {missing}, "
            f"which module builds link against (named in {kernel.crates_source})"
        )
    lines = _Lines(_kernel_facts(kernel), kernel.notes)
    return _refused(situation, Verdict.NO_METADATA, reason, headline, lines)


def _rustc_choice(situation: Situation) -> _RustcChoice:
    """The pinned rustc when it qualifies, else the first qualifying match."""
    base = _Lines(_kernel_facts(situation.kernel), situation.kernel.notes)
    pinned = _pin_step(situation)
    if pinned.rustc is not None:
        return replace(pinned, lines=base + pinned.lines)
    candidates = _candidate_step(situation)
    return _RustcChoice(
        candidates.rustc,
        base + pinned.lines + candidates.lines,
        pinned.failed_proofs + candidates.failed_proofs,
        pinned.compiler_at_fault or candidates.compiler_at_fault,
    )


def _proof_failed(proof: ProofResult | None) -> bool:
    return proof is not None and not proof.ok and not proof.skipped


def _pin_step(situation: Situation) -> _RustcChoice:
    """The pinned rustc, selected only if it is usable, the kernel's, and passed its test."""
    pinned = situation.pinned
    if pinned is None:
        return _RustcChoice(None, _Lines())
    toolchain = pinned.toolchain
    refused = f"{pinned.label} refused: "
    instead = "; choosing as if there were no pin"
    if toolchain is None:
        return _RustcChoice(
            None, _Lines(warnings=(refused + (pinned.problem or "its rustc was not found") + instead,))
        )
    if not toolchain.usable:
        return _RustcChoice(
            None, _Lines(warnings=(f"{refused}{toolchain.shown}: {toolchain.skipped}{instead}",))
        )
    if not matches(situation.kernel, toolchain):
        needs = situation.kernel.expected_rustc
        why = f"{toolchain.binary} is {toolchain.version_text}, but the kernel needs {needs}"
        return _RustcChoice(None, _Lines(warnings=(refused + why + instead,)))
    proof = situation.proofs.get(toolchain.binary)
    if proof is not None and _proof_failed(proof):
        return _RustcChoice(
            None,
            _Lines(warnings=(f"{refused}{toolchain.binary} failed the test compile{instead}",)),
            (f"{toolchain.binary}: {proof.detail}",),
            proof.compiler_at_fault,
        )
    skipped = (proof.detail,) if proof is not None and proof.skipped else ()
    return _RustcChoice(toolchain, _Lines((f"selected because of {pinned.label}",), skipped))


def _candidate_step(situation: Situation) -> _RustcChoice:
    """The first matching candidate (the pin's target aside) whose test compile did not fail."""
    pinned = situation.pinned
    pin_binary = pinned.toolchain.binary if pinned is not None and pinned.toolchain else None
    failed: list[str] = []
    at_fault = False
    for candidate in matching_rustcs(situation.kernel, situation.rustcs):
        if candidate.binary == pin_binary:
            continue  # already judged as the pin
        proof = situation.proofs.get(candidate.binary)
        if not _proof_failed(proof):
            skipped = (proof.detail,) if proof is not None and proof.skipped else ()
            return _RustcChoice(candidate, _Lines(warnings=skipped), tuple(failed), at_fault)
        assert proof is not None
        failed.append(f"{candidate.binary}: {proof.detail}")
        at_fault = at_fault or proof.compiler_at_fault
    return _RustcChoice(None, _Lines(), tuple(failed), at_fault)


def _describe(toolchain: Toolchain) -> str:
    if toolchain.skipped:
        named = f" (its files name {toolchain.version_text})" if toolchain.version_text else ""
        return f"{toolchain.path}: {toolchain.skipped}{named}"
    return f"{toolchain.path}: {toolchain.version_text}"


def _nothing_found(settings: Settings) -> str:
    if settings.search_defaults:
        return "candidates: no rustc found (looked on PATH, in rustup homes and distribution directories)"
    where = settings.origins.get("search_defaults", "the configuration")
    return (
        "candidates: no rustc found in the directories named with search = or --search; PATH, rustup "
        f"homes and distribution directories were not searched (search_defaults = no, {where})"
    )


def _untrusted_named(kernel: KernelRust, rustcs: Sequence[Toolchain]) -> tuple[Toolchain, ...]:
    """Candidates root refused to run whose own files name the kernel's compiler (read, never run)."""
    return tuple(tool for tool in rustcs if tool.untrusted and tool.version_text == kernel.expected_rustc)


def _rustc_refusal(situation: Situation, choice: _RustcChoice) -> Decision:
    kernel = situation.kernel
    name = _name(kernel)
    candidates = tuple(f"candidate {_describe(tool)}" for tool in situation.rustcs) or (
        _nothing_found(situation.settings),
    )
    lines = choice.lines + _Lines(candidates)
    if choice.failed_proofs:
        reason = Reason.COMPILER_FAILED if choice.compiler_at_fault else Reason.METADATA_UNLOADABLE
        headline = (
            f"no usable rustc for kernel {name}: the matching compiler failed the test compile "
            "against the kernel's metadata"
        )
        lines += _Lines(tuple(f"test compile: {line}" for line in choice.failed_proofs))
        return _refused(situation, Verdict.REFUSED, reason, headline, lines)
    untrusted = _untrusted_named(kernel, situation.rustcs)
    if untrusted:
        headline = (
            f"no usable rustc for kernel {name}: it needs {kernel.expected_rustc}, and the only copies "
            f"found ({', '.join(str(tool.path) for tool in untrusted)}) are not trusted to run as root"
        )
        return _refused(situation, Verdict.REFUSED, Reason.MATCH_UNTRUSTED, headline, lines, copies=untrusted)
    # Refused candidates that could be the one: their files say nothing of what they are.
    unknown = tuple(tool for tool in situation.rustcs if tool.untrusted and tool.version_text is None)
    headline = f"no installed rustc matches kernel {name}: it needs {kernel.expected_rustc}"
    return _refused(situation, Verdict.REFUSED, Reason.NO_MATCH, headline, lines, copies=unknown)


def _missing_bindgen_message(kernel: KernelRust, bindgens: Sequence[Toolchain]) -> str:
    wanted = parse_bindgen_version(kernel.config_bindgen_text or "")
    needs = f"at least {kernel.min_bindgen}" if kernel.min_bindgen else "a bindgen"
    configured = f"; it was configured with {wanted}" if wanted else ""
    message = (
        f"no usable bindgen found (the kernel needs {needs}{configured}): "
        "modules that generate their own bindings will fail; install one where dkms-rustc "
        "looks (PATH, /usr/bin/bindgen-0.XX, root's ~/.cargo/bin) or name it with search ="
    )
    refused = [tool for tool in bindgens if tool.untrusted]
    if refused:
        message += "; not trusted to run as root: " + "; ".join(
            f"{tool.path} ({tool.untrusted})" for tool in refused
        )
    return message


def _with_bindgen(situation: Situation, choice: _RustcChoice, rustc: Toolchain) -> Decision:
    kernel = situation.kernel
    bindgen, note = choose_bindgen(kernel, situation.bindgens)
    if bindgen is not None:
        return _selected(situation, choice, rustc, bindgen, note)
    message = _missing_bindgen_message(kernel, situation.bindgens)
    if not situation.settings.require_bindgen:
        return _selected(situation, choice, rustc, None, message)
    lines = choice.lines + _Lines((f"selected rustc: {rustc.binary}",))
    copies = tuple(tool for tool in situation.bindgens if tool.untrusted)
    headline = f"no suitable bindgen for kernel {_name(kernel)}: {message}"
    return _refused(situation, Verdict.REFUSED, Reason.NO_BINDGEN, headline, lines, copies=copies)


def _llvm_warning(kernel: KernelRust, rustc: Toolchain) -> tuple[str, ...]:
    if kernel.llvm_major is None or not rustc.llvm_version:
        return ()
    major = rustc.llvm_version.split(".")[0]
    if not major.isdigit() or len(major) > 9 or int(major) == kernel.llvm_major:
        return ()
    return (
        f"the selected rustc uses LLVM {rustc.llvm_version}, the kernel was built with LLVM "
        f"{kernel.llvm_major}: fine for Rust code, but cross-language LTO or CFI would mismatch",
    )


def _selected(
    situation: Situation,
    choice: _RustcChoice,
    rustc: Toolchain,
    bindgen: Toolchain | None,
    bindgen_warning: str | None,
) -> Decision:
    kernel = situation.kernel
    args = [f"RUSTC={rustc.binary}", f"HOSTRUSTC={rustc.binary}"]
    if bindgen is not None:
        args.append(f"BINDGEN={bindgen.binary}")
    if rustc.rust_src is not None:
        args.append(f"RUST_LIB_SRC={rustc.rust_src}")
    facts = [f"selected rustc: {rustc.binary} ({rustc.version_text})"]
    proof = situation.proofs.get(rustc.binary)
    if proof is not None and proof.ok:
        facts.append(f"proof: {proof.detail}")
    if bindgen is not None:
        facts.append(f"selected bindgen: {bindgen.binary} ({bindgen.version_text})")
    warnings = ((bindgen_warning,) if bindgen_warning else ()) + _llvm_warning(kernel, rustc)
    lines = choice.lines + _Lines(tuple(facts), warnings)
    return Decision(
        verdict=Verdict.OK,
        headline=f"kernel {_name(kernel)}: building with {rustc.version_text} from {rustc.binary}",
        kernel=kernel,
        rustc=rustc,
        bindgen=bindgen,
        make_args=tuple(args),
        facts=lines.facts,
        warnings=lines.warnings,
        policy=situation.settings.policy,
        matching=tuple(matching_rustcs(kernel, situation.rustcs)),
    )


# Refusals whose headline says the build stops (unless a policy lets it go on).
_SAYS_STOPPED = frozenset(
    {Reason.NO_MATCH, Reason.MATCH_UNTRUSTED, Reason.COMPILER_FAILED, Reason.METADATA_UNLOADABLE}
)


def _policy_step(settings: Settings) -> tuple[Policy | None, tuple[str, ...], tuple[str, ...]]:
    """Whether the policy lets a refused build go on: (applied, make arguments, warnings)."""
    if settings.policy is Policy.WARN:
        return (
            Policy.WARN,
            (),
            ("policy warn: the build goes on with kbuild's default rustc and will probably fail",),
        )
    if settings.policy is Policy.FALLBACK:
        if not settings.fallback_make_args:
            return None, (), ("policy fallback is set but fallback_make_args is empty: refusing instead",)
        args = settings.fallback_make_args
        note = f"policy fallback: the module is built with {' '.join(args)} instead of the Rust toolchain"
        return Policy.FALLBACK, args, (note,)
    return None, (), ()


def _refused(
    situation: Situation,
    verdict: Verdict,
    reason: Reason,
    headline: str,
    lines: _Lines,
    *,
    copies: tuple[Toolchain, ...] = (),
    soften: bool = True,
) -> Decision:
    """A refusal, which the ``warn`` or ``fallback`` policy may let go on (when ``soften``)."""
    applied, args, policy_warnings = _policy_step(situation.settings) if soften else (None, (), ())
    if applied is None and reason in _SAYS_STOPPED:
        headline += "; the build is stopped before compiling"
    return Decision(
        verdict=verdict,
        headline=headline,
        kernel=situation.kernel,
        make_args=args,
        facts=lines.facts,
        warnings=lines.warnings + policy_warnings,
        policy=situation.settings.policy,
        policy_applied=applied,
        refusal=Refusal(reason, copies),
    )


def error_decision(
    headline: str,
    reason: Reason,
    policy: Policy = Policy.SELECT,
    *,
    release: str | None = None,
    tree: Path | None = None,
) -> Decision:
    """A decision for a run that could not look at the kernel at all."""
    refusal = Refusal(reason, release=release, tree=tree)
    return Decision(verdict=Verdict.ERROR, headline=headline, policy=policy, refusal=refusal)
