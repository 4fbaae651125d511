# SPDX-License-Identifier: GPL-2.0-or-later
"""The test compile proves a compiler only by what it wrote, and only a rustc is believed.

Found by the fourth red team: ``pin = * /usr/bin/true`` (an administrator's slip, or a search
directory holding any program named rustc beside a real sysroot) was selected. Its version was
read from the sysroot's files without running it, and the test compile "passed" because the
program exited 0. Everything here is real: the kernel tree is made by rustup's stable rustc,
the impostor is this machine's /usr/bin/true, and the positive controls run the real rustc.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

import kerneltree
from conftest import check_json, messages_text, write_config
from dkms_rustc.cache import Cache
from dkms_rustc.kernel import read_kernel
from dkms_rustc.proof import ProofOutcome, prove
from dkms_rustc.runner import Deadline
from dkms_rustc.toolchains import CandidateKind, Found, Toolchain

TRUE = Path(shutil.which("true") or "/usr/bin/true").resolve()


def _claiming(binary: Path, version_text: str) -> Toolchain:
    """A toolchain as discovery would hand it over: ``binary`` said to be ``version_text``."""
    found = Found(CandidateKind.RUSTC, binary, binary, ("test",))
    return Toolchain(found=found, version_text=version_text, release=version_text.split()[1])


@pytest.mark.parametrize("binary", ["true", "stable"])
def test_an_exit_status_of_0_is_not_a_test_compile(
    binary: str, kernel_trees: Mapping[str, Path], public_base: Path
) -> None:
    stable = kerneltree.need("stable")
    kernel = read_kernel(kernel_trees["stable"], Cache(None))
    assert kernel.code_problem is None  # the test compile is allowed to run
    program = TRUE if binary == "true" else stable.rustc
    result = prove(_claiming(program, stable.version_text), kernel, Cache(None), Deadline(30))
    if binary == "stable":  # positive control: the real compiler writes metadata naming itself
        assert result.outcome is ProofOutcome.PASSED, result.detail
        return
    assert result.outcome is ProofOutcome.FAILED
    assert result.compiler_at_fault
    assert result.detail == (
        f"test compile failed: {TRUE} exited 0 but wrote no crate metadata: it is not the "
        f"rustc its files say ({stable.version_text})"
    )


def test_metadata_naming_another_compiler_fails_the_test_compile(
    kernel_trees: Mapping[str, Path], public_base: Path
) -> None:
    """A compiler whose files say one build but which writes another's metadata (a real
    rustc: rustup's stable, claimed to be a build that differs in its commit)."""
    stable = kerneltree.need("stable")
    kernel = read_kernel(kernel_trees["stable"], Cache(None))
    claimed = stable.version_text.replace("(", "(0", 1)
    result = prove(_claiming(stable.rustc, claimed), kernel, Cache(None), Deadline(30))
    assert result.outcome is ProofOutcome.FAILED
    assert f"the crate metadata it wrote names {stable.version_text!r}" in result.detail


@pytest.mark.parametrize("program", ["true", "rustc"])
def test_a_program_beside_a_real_sysroot_is_a_rustc_only_if_it_loads_the_driver(
    program: str,
    kernel_trees: Mapping[str, Path],
    public_base: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A copy of rustup's stable toolchain whose bin/rustc is /usr/bin/true: the sysroot's
    libcore names the kernel's compiler, but the program is not one. It is asked (``-vV``), and
    what it answers (nothing) is not a rustc version. Positive control: the real bin/rustc in
    the same copy is read from its files and selected."""
    stable = kerneltree.need("stable")
    toolchain = public_base / "toolchain"
    kerneltree.link_tree(stable.sysroot, toolchain)
    if program == "true":
        (toolchain / "bin" / "rustc").unlink()
        shutil.copy2(TRUE, toolchain / "bin" / "rustc")
    conf = write_config(public_base, f"search = {toolchain / 'bin'}\n")
    code, data = check_json(capsys, "--kernel-dir", str(kernel_trees["stable"]), "--config", str(conf))
    rustc = str(toolchain / "bin" / "rustc")
    (candidate,) = [entry for entry in data["candidates"] if entry["path"] == rustc]
    if program == "rustc":
        assert code == 0, messages_text(data)
        assert data["selected"]["rustc"] == rustc
        assert "libcore metadata" in str(candidate["learned_from"])
        return
    assert code != 0
    assert data["verdict"] != "ok"
    assert f"`{rustc} -vV` printed nothing" in str(candidate["skipped"]), candidate


def test_a_pinned_program_that_is_not_a_rustc_is_refused(
    kernel_trees: Mapping[str, Path], public_base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pin = * /usr/bin/true``: the pin is refused with the reason, and nothing selects it."""
    kerneltree.need("stable")
    conf = write_config(public_base, f"pin = * {TRUE}\n")
    code, data = check_json(capsys, "--kernel-dir", str(kernel_trees["stable"]), "--config", str(conf))
    assert code != 0 and data["verdict"] != "ok"
    assert data["selected"]["rustc"] is None
    assert (
        f"pin * {TRUE} ({conf}:3) refused: {TRUE}: unusable: `{TRUE} -vV` printed nothing, "
        "not a rustc version" in messages_text(data)
    )
