"""What the admin reads: human lines (verdict first, one fact per line, the fix spelled out)
and one JSON object with the same content for scripts."""

from __future__ import annotations

from dkms_rustc import decision as decisions
from dkms_rustc.config import Policy
from dkms_rustc.decision import Verdict
from dkms_rustc.engine import Assessment
from dkms_rustc.toolchains import Toolchain

# typing takes milliseconds to import and only the type checker needs it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_VERDICT_WORDS = {
    Verdict.OK: "OK",
    Verdict.REFUSED: "REFUSED",
    Verdict.NO_RUST: "SKIPPED (no Rust in this kernel)",
    Verdict.NO_METADATA: "REFUSED (no Rust metadata)",
    Verdict.ERROR: "ERROR",
}
_POLICY_WORDS = {
    Policy.WARN: ", building anyway (policy warn)",
    Policy.FALLBACK: ", building the fallback variant (policy fallback)",
}


def verdict_word(decision: decisions.Decision) -> str:
    """``OK``, ``REFUSED``, ... and what a policy made of it: the first word of every report."""
    applied = decision.policy_applied
    return _VERDICT_WORDS[decision.verdict] + (_POLICY_WORDS[applied] if applied is not None else "")


def short_verdict_word(decision: decisions.Decision) -> str:
    """The bare word, for a table column: ``OK``, ``REFUSED``, ``SKIPPED``, ``ERROR``."""
    return _VERDICT_WORDS[decision.verdict].split(" ", 1)[0]


def human_lines(assessment: Assessment, verbose: bool = False) -> list[str]:
    decision = assessment.decision
    lines = [f"{verdict_word(decision)}: {decision.headline}"]
    lines += list(decision.facts)
    lines += [f"warning: {warning}" for warning in decision.warnings]
    lines += [f"fix: {fix}" for fix in decision.fixes]
    if verbose:
        lines += evidence_lines(assessment)
    return lines


def evidence_lines(assessment: Assessment) -> list[str]:
    lines: list[str] = []
    kernel = assessment.decision.kernel
    if kernel is not None:
        lines.append(f"evidence: configuration {kernel.config_path}")
        if len(kernel.roots) > 1:
            lines.append(f"evidence: split tree, also {', '.join(str(root) for root in kernel.roots[1:])}")
        for artifact in kernel.artifacts:
            lines.append(f"evidence: {artifact.path}: {artifact.compiler or artifact.error}")
        if kernel.crates_source:
            lines.append(
                f"evidence: crates modules link against ({kernel.crates_source}): "
                f"{', '.join(kernel.required_crates) or 'none named'}"
            )
        lines.append(
            f"evidence: minimum rustc {kernel.min_rustc}, bindgen {kernel.min_bindgen} "
            f"({kernel.minimums_source})"
        )
    if assessment.discovery is not None:
        lines += [f"evidence: {item}" for item in assessment.discovery.evidence]
        lines += [
            f"evidence: rustup proxy {proxy} replaced by its toolchains"
            for proxy in assessment.discovery.proxies
        ]
    for tool in [*assessment.rustcs, *assessment.bindgens]:
        lines.append(f"evidence: candidate {tool_line(tool)}")
    for binary, proof in assessment.proofs.items():
        lines.append(f"evidence: test compile with {binary}: {proof.outcome}: {proof.detail}")
    lines += [f"evidence: cache: {note}" for note in assessment.cache_notes]
    return lines


def tool_line(tool: Toolchain) -> str:
    where = ", ".join(tool.found.origins)
    if tool.skipped:
        named = f" (its files name {tool.version_text}, read without running it)" if tool.version_text else ""
        return f"{tool.path} [{where}]: skipped: {tool.skipped}{named}"
    return f"{tool.path} [{where}]: {tool.version_text} (learned from {tool.learned_from})"


def tool_json(tool: Toolchain, matches: bool | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": tool.found.kind.value,
        "path": str(tool.path),
        "binary": None if tool.binary_hidden else str(tool.binary),
        "origins": list(tool.found.origins),
        "version": tool.version_text,
        "release": tool.release,
        "llvm_version": tool.llvm_version,
        "host": tool.host,
        "sysroot": str(tool.sysroot) if tool.sysroot else None,
        "rust_src": str(tool.rust_src) if tool.rust_src else None,
        "learned_from": tool.learned_from,
        "usable": tool.usable,
        "skipped": tool.skipped,
        "untrusted": tool.untrusted,
    }
    if matches is not None:
        data["matches_kernel"] = matches
    return data


def as_json(assessment: Assessment, verbose: bool = False) -> dict[str, Any]:
    decision = assessment.decision
    kernel = decision.kernel
    kernel_data: dict[str, Any] = {"rustc": None, "rustc_source": None}
    if kernel is not None:
        kernel_data = {
            "tree": str(kernel.tree),
            "release": kernel.kernelrelease,
            "rust_enabled": kernel.rust_enabled,
            "rustc": kernel.expected_rustc,
            "rustc_source": kernel.expected_source,
            "config": str(kernel.config_path),
            "config_rustc_text": kernel.config_rustc_text,
            "bindgen": kernel.config_bindgen_text,
            "rustc_version_number": kernel.config_rustc_number,
            "llvm_version_number": kernel.config_llvm_number,
            "metadata": [
                {"path": str(a.path), "compiler": a.compiler, "error": a.error} for a in kernel.artifacts
            ],
            "required_crates": list(kernel.required_crates),
            "missing_crates": list(kernel.missing_crates),
            "min_rustc": kernel.min_rustc,
            "min_bindgen": kernel.min_bindgen,
        }
    selected = {
        "rustc": str(decision.rustc.binary) if decision.rustc else None,
        "rustc_version": decision.rustc.version_text if decision.rustc else None,
        "bindgen": str(decision.bindgen.binary) if decision.bindgen else None,
        "bindgen_version": decision.bindgen.version_text if decision.bindgen else None,
        "rust_lib_src": str(decision.rustc.rust_src) if decision.rustc and decision.rustc.rust_src else None,
        "make_args": list(decision.make_args),
    }
    matching = {tool.binary for tool in decision.matching}
    return {
        "verdict": decision.verdict.value,
        "exit_code": int(decision.exit_code),
        "headline": decision.headline,
        "policy": decision.policy.value,
        "policy_applied": decision.policy_applied.value if decision.policy_applied else None,
        "refusal": decision.refusal.reason.value if decision.refusal else None,
        "kernel": kernel_data,
        "selected": selected,
        "candidates": [tool_json(tool, tool.binary in matching) for tool in assessment.rustcs]
        + [tool_json(tool) for tool in assessment.bindgens],
        "proofs": {
            str(binary): {"ok": p.ok, "skipped": p.skipped, "detail": p.detail}
            for binary, p in assessment.proofs.items()
        },
        "warnings": list(decision.warnings),
        "fixes": list(decision.fixes),
        "messages": human_lines(assessment, verbose),
    }


def dumps(data: object) -> str:
    import json  # only --json output needs it

    return json.dumps(data, indent=2, sort_keys=False)
