"""The decision: which rustc and bindgen a module build gets, or why it must not start.

:func:`decide` is pure: everything it needs (what the kernel recorded, every candidate and
what was learned about it, the results of the test compiles, the settings, the distribution
for wording fixes) is passed in, and it returns a :class:`Decision` value. Matching is string
equality of the whole compiler version string, the test rustc itself applies; numbers alone
never match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dkms_rustc import hints
from dkms_rustc.config import Pin, Settings
from dkms_rustc.kernel import KernelRust
from dkms_rustc.probe import Toolchain
from dkms_rustc.proof import ProofResult
from dkms_rustc.versions import kbuild_version_text, parse_bindgen_version, release_numbers

OK = "ok"
REFUSED = "refused"
NO_RUST = "no-rust"
NO_METADATA = "no-metadata"
ERROR = "error"

# One exit status per verdict; 2 is a usage error (argparse's own); 77 is DKMS's "skipped".
EXIT_CODES = {OK: 0, REFUSED: 1, NO_METADATA: 3, ERROR: 4, NO_RUST: 77}


@dataclass(frozen=True)
class Decision:
    """The outcome for one kernel: the verdict, the make arguments, and every line to print."""

    verdict: str
    headline: str
    kernel: KernelRust | None = None
    rustc: Toolchain | None = None
    bindgen: Toolchain | None = None
    make_args: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    policy: str = "select"
    policy_applied: str | None = None  # "warn" or "fallback" when the policy changed the outcome
    matching: tuple[Toolchain, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        """The verdict's exit status; 0 when a warn or fallback policy lets the build go on."""
        return 0 if self.policy_applied is not None else EXIT_CODES[self.verdict]

    @property
    def build_may_proceed(self) -> bool:
        return self.verdict == OK or self.policy_applied is not None


@dataclass(frozen=True)
class PinChoice:
    """The pin that applies to this kernel and what its target turned out to be."""

    pin: Pin
    toolchain: Toolchain | None  # None when the target could not even be found
    problem: str | None = None  # why not, when toolchain is None

    @property
    def label(self) -> str:
        return f"pin {self.pin.pattern} {self.pin.target} ({self.pin.where})"


def matches(kernel: KernelRust, toolchain: Toolchain) -> bool:
    """True when ``toolchain`` is the compiler the kernel's metadata (or config) names."""
    if not toolchain.usable or kernel.expected_rustc is None or toolchain.version_text is None:
        return False
    if kernel.has_metadata:
        return toolchain.version_text == kernel.expected_rustc
    return kbuild_version_text(toolchain.version_text) == kernel.expected_rustc


def matching_rustcs(kernel: KernelRust, rustcs: Sequence[Toolchain]) -> list[Toolchain]:
    return [toolchain for toolchain in rustcs if matches(kernel, toolchain)]


def _numbers(text: str | None) -> tuple[int, int, int]:
    return release_numbers(text or "") or (0, 0, 0)


def choose_bindgen(kernel: KernelRust, bindgens: Sequence[Toolchain]) -> tuple[Toolchain | None, str | None]:
    """The kernel's own bindgen version if installed, else the newest at or above the minimum."""
    usable = [tool for tool in bindgens if tool.usable and tool.release]
    wanted = parse_bindgen_version(kernel.config_bindgen_text or "")
    for tool in usable:
        if wanted and tool.release == wanted:
            return tool, None
    minimum = _numbers(kernel.min_bindgen)
    acceptable = [tool for tool in usable if _numbers(tool.release) >= minimum]
    if not acceptable:
        return None, None
    best = max(acceptable, key=lambda tool: _numbers(tool.release))
    note = (
        f"bindgen {best.release} ({best.binary}) is used; the kernel was configured with "
        f"{kernel.config_bindgen_text or 'an unrecorded bindgen'}"
        f"{f' and needs at least {kernel.min_bindgen}' if kernel.min_bindgen else ''}"
    )
    return best, note


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


def _untrusted(tools: Sequence[Toolchain]) -> list[Toolchain]:
    return [tool for tool in tools if tool.untrusted]


def _untrusted_matching(kernel: KernelRust, rustcs: Sequence[Toolchain]) -> list[Toolchain]:
    """Refused candidates whose own files name the kernel's compiler (read, never run)."""
    wanted = kernel.expected_rustc
    if wanted is None:
        return []
    found = []
    for tool in _untrusted(rustcs):
        text = tool.version_text
        if text is not None and (text if kernel.has_metadata else kbuild_version_text(text)) == wanted:
            found.append(tool)
    return found


def _untrusted_details(tools: Sequence[Toolchain]) -> list[tuple[Path, Path | None, str]]:
    return [(tool.path, tool.sysroot, tool.untrusted or "") for tool in tools]


def _kernel_facts(kernel: KernelRust) -> list[str]:
    facts = [
        f"kernel build tree: {kernel.tree}" + (f" ({kernel.kernelrelease})" if kernel.kernelrelease else "")
    ]
    if kernel.expected_rustc:
        facts.append(f"kernel needs: {kernel.expected_rustc} (read from {kernel.expected_source})")
    if kernel.config_bindgen_text:
        facts.append(f"kernel was configured with: {kernel.config_bindgen_text}")
    return facts


_STOPPED = "; the build is stopped before compiling"


def _policy_outcome(
    verdict: str,
    headline: str,
    settings: Settings,
    facts: list[str],
    warnings: list[str],
    fixes: list[str],
    kernel: KernelRust,
) -> Decision:
    """A refusal, softened by the ``warn`` or ``fallback`` policy where configured."""
    applied: str | None = None
    args: tuple[str, ...] = ()
    if settings.policy == "warn":
        applied = "warn"
        warnings.append("policy warn: the build goes on with kbuild's default rustc and will probably fail")
    elif settings.policy == "fallback":
        if settings.fallback_make_args:
            applied = "fallback"
            args = settings.fallback_make_args
            warnings.append(
                f"policy fallback: the module is built with {' '.join(args)} instead of the Rust toolchain"
            )
        else:
            warnings.append("policy fallback is set but fallback_make_args is empty: refusing instead")
    if applied is not None and headline.endswith(_STOPPED):
        headline = headline[: -len(_STOPPED)]  # the build goes on: do not say it stops
    return Decision(
        verdict=verdict,
        headline=headline,
        kernel=kernel,
        make_args=args,
        facts=tuple(facts),
        warnings=tuple(warnings),
        fixes=tuple(fixes),
        policy=settings.policy,
        policy_applied=applied,
    )


def decide(
    kernel: KernelRust,
    rustcs: Sequence[Toolchain],
    bindgens: Sequence[Toolchain],
    settings: Settings,
    proofs: Mapping[Path, ProofResult],
    platform: hints.Platform,
    pinned: PinChoice | None = None,
) -> Decision:
    """Select the toolchain for a module build against ``kernel``, or refuse with the fix.

    A pin is a preference, never an override: its rustc is selected only when it is the
    kernel's compiler and passes the test compile; otherwise the pin is refused with the
    reason and the choice is made as if there were no pin.
    """
    name = kernel.kernelrelease or str(kernel.tree)
    facts = _kernel_facts(kernel)
    warnings = list(kernel.notes)

    if not kernel.rust_enabled:
        headline = (
            f"kernel {name} is built without Rust support (CONFIG_RUST is not set): "
            "Rust modules cannot be built for it and are skipped"
        )
        no_rust_facts = [f"kernel build tree: {kernel.tree}", f"configuration read from {kernel.config_path}"]
        no_rust_fixes = [
            'nothing to fix for this module: add BUILD_EXCLUSIVE_CONFIG="CONFIG_RUST" to its dkms.conf '
            "so DKMS skips such kernels quietly"
        ]
        if settings.policy == "fallback" and settings.fallback_make_args:
            # A module with a C-only variant can still be built for this kernel.
            return _policy_outcome(NO_RUST, headline, settings, no_rust_facts, warnings, [], kernel)
        return Decision(
            verdict=NO_RUST,
            headline=headline,
            kernel=kernel,
            facts=tuple(no_rust_facts),
            warnings=tuple(warnings),
            fixes=tuple(no_rust_fixes),
            policy=settings.policy,
        )

    if not kernel.has_metadata or kernel.missing_crates:
        if not kernel.has_metadata:
            where = kernel.rust_dir or (kernel.tree / "rust")
            headline = (
                f"kernel {name} has Rust enabled but its headers carry no Rust metadata ({where} "
                "has no readable .rmeta files): no out-of-tree Rust module can be built against it"
            )
        else:
            missing = ", ".join(f"lib{crate}.rmeta" for crate in kernel.missing_crates)
            headline = (
                f"kernel {name}'s Rust metadata is incomplete: {kernel.rust_dir} lacks {missing}, "
                f"which module builds link against (named in {kernel.crates_source})"
            )
        return _policy_outcome(
            NO_METADATA,
            headline,
            settings,
            facts,
            warnings,
            hints.install_metadata(kernel.kernelrelease, platform),
            kernel,
        )

    matching = matching_rustcs(kernel, rustcs)
    selected: Toolchain | None = None
    failed_proofs: list[str] = []
    toolchain_broken = False
    if pinned is not None:
        selected = _pinned_selection(kernel, pinned, proofs, facts, warnings, failed_proofs)
        pin_proof = proofs.get(pinned.toolchain.binary) if pinned.toolchain is not None else None
        toolchain_broken = bool(selected is None and pin_proof is not None and pin_proof.compiler_at_fault)
    pin_binary = pinned.toolchain.binary if pinned is not None and pinned.toolchain else None
    for candidate in [] if selected is not None else matching:
        if candidate.binary == pin_binary:
            continue  # already judged as the pin
        proof = proofs.get(candidate.binary)
        if proof is None or proof.ok or proof.skipped:
            selected = candidate
            if proof is not None and proof.skipped:
                warnings.append(proof.detail)
            break
        failed_proofs.append(f"{candidate.binary}: {proof.detail}")
        toolchain_broken = toolchain_broken or proof.compiler_at_fault

    if selected is None:
        assert kernel.expected_rustc is not None
        lines = [f"candidate {_describe(toolchain)}" for toolchain in rustcs] or [_nothing_found(settings)]
        if failed_proofs:
            headline = (
                f"no usable rustc for kernel {name}: the matching compiler failed the test compile "
                f"against the kernel's metadata{_STOPPED}"
            )
            lines += [f"test compile: {line}" for line in failed_proofs]
            if toolchain_broken:
                repair = [
                    "the compiler itself failed (it crashed or hung, or it is not the build its own "
                    "files say it is: an interrupted upgrade?): reinstall that toolchain, then run "
                    "the build again"
                ]
            else:
                repair = [
                    f"the kernel's Rust metadata in {kernel.rust_dir} could not be loaded (damaged or "
                    "incomplete headers?): reinstall the package that provides it, then run the build again"
                ]
        else:
            refused = _untrusted_matching(kernel, rustcs)
            if refused:
                headline = (
                    f"no usable rustc for kernel {name}: it needs {kernel.expected_rustc}, and the "
                    f"only copies found ({', '.join(str(tool.path) for tool in refused)}) are not "
                    f"trusted to run as root{_STOPPED}"
                )
            else:
                headline = (
                    f"no installed rustc matches kernel {name}: it needs {kernel.expected_rustc}{_STOPPED}"
                )
            repair = hints.install_rustc(kernel.expected_rustc, platform)
            # Refused candidates that could be the one: their files name it, or say nothing.
            unknown = [tool for tool in _untrusted(rustcs) if tool.version_text is None]
            repair += hints.root_owned_toolchain(_untrusted_details(refused or unknown))
        return _policy_outcome(REFUSED, headline, settings, facts + lines, warnings, repair, kernel)

    args = [f"RUSTC={selected.binary}", f"HOSTRUSTC={selected.binary}"]
    bindgen, bindgen_note = choose_bindgen(kernel, bindgens)
    if bindgen is not None:
        args.append(f"BINDGEN={bindgen.binary}")
        if bindgen_note:
            warnings.append(bindgen_note)
    else:
        wanted = parse_bindgen_version(kernel.config_bindgen_text or "")
        needs = f"at least {kernel.min_bindgen}" if kernel.min_bindgen else "a bindgen"
        configured = f"; it was configured with {wanted}" if wanted else ""
        message = (
            f"no usable bindgen found (the kernel needs {needs}{configured}): "
            "modules that generate their own bindings will fail; install one where dkms-rustc "
            "looks (PATH, /usr/bin/bindgen-0.XX, root's ~/.cargo/bin) or name it with search ="
        )
        refused_bindgens = _untrusted(bindgens)
        if refused_bindgens:
            message += "; not trusted to run as root: " + "; ".join(
                f"{tool.path} ({tool.untrusted})" for tool in refused_bindgens
            )
        if settings.require_bindgen:
            facts.append(f"selected rustc: {selected.binary}")
            return _policy_outcome(
                REFUSED,
                f"no suitable bindgen for kernel {name}: {message}",
                settings,
                facts,
                warnings,
                hints.install_bindgen(wanted, kernel.min_bindgen, platform)
                + hints.root_owned_toolchain(_untrusted_details(refused_bindgens), kind="bindgen"),
                kernel,
            )
        warnings.append(message)
    if selected.rust_src is not None:
        args.append(f"RUST_LIB_SRC={selected.rust_src}")
    if kernel.llvm_major is not None and selected.llvm_version:
        major = selected.llvm_version.split(".")[0]
        if major.isdigit() and len(major) < 10 and int(major) != kernel.llvm_major:
            warnings.append(
                f"the selected rustc uses LLVM {selected.llvm_version}, the kernel was built with LLVM "
                f"{kernel.llvm_major}: fine for Rust code, but cross-language LTO or CFI would mismatch"
            )
    proof = proofs.get(selected.binary)
    facts.append(f"selected rustc: {selected.binary} ({selected.version_text})")
    if proof is not None and proof.ok:
        facts.append(f"proof: {proof.detail}")
    if bindgen is not None:
        facts.append(f"selected bindgen: {bindgen.binary} ({bindgen.version_text})")
    return Decision(
        verdict=OK,
        headline=f"kernel {name}: building with {selected.version_text} from {selected.binary}",
        kernel=kernel,
        rustc=selected,
        bindgen=bindgen,
        make_args=tuple(args),
        facts=tuple(facts),
        warnings=tuple(warnings),
        policy=settings.policy,
        matching=tuple(matching),
    )


def _pinned_selection(
    kernel: KernelRust,
    pinned: PinChoice,
    proofs: Mapping[Path, ProofResult],
    facts: list[str],
    warnings: list[str],
    failed_proofs: list[str],
) -> Toolchain | None:
    toolchain = pinned.toolchain
    refused = f"{pinned.label} refused: "
    instead = "; choosing as if there were no pin"
    if toolchain is None:
        warnings.append(refused + (pinned.problem or "its rustc was not found") + instead)
        return None
    if not toolchain.usable:
        warnings.append(f"{refused}{toolchain.binary}: {toolchain.skipped}{instead}")
        return None
    if not matches(kernel, toolchain):
        warnings.append(
            f"{refused}{toolchain.binary} is {toolchain.version_text}, but the kernel needs "
            f"{kernel.expected_rustc}{instead}"
        )
        return None
    proof = proofs.get(toolchain.binary)
    if proof is not None and not proof.ok and not proof.skipped:
        failed_proofs.append(f"{toolchain.binary}: {proof.detail}")
        warnings.append(f"{refused}{toolchain.binary} failed the test compile{instead}")
        return None
    if proof is not None and proof.skipped:
        warnings.append(proof.detail)
    facts.append(f"selected because of {pinned.label}")
    return toolchain


def error_decision(headline: str, fixes: Sequence[str] = (), policy: str = "select") -> Decision:
    """A decision for a run that could not look at the kernel at all."""
    return Decision(verdict=ERROR, headline=headline, fixes=tuple(fixes), policy=policy)
