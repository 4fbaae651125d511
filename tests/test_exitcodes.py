# SPDX-License-Identifier: GPL-2.0-or-later
"""One table of exit codes: the Python code, the shell scripts and the docs use the same numbers."""

from __future__ import annotations

import re
from pathlib import Path

from dkms_rustc.decision import Verdict
from dkms_rustc.exitcodes import HELP, ExitCode

ROOT = Path(__file__).resolve().parents[1]
# dkms.in's own exit statuses (its header comment): PRE_BUILD's status is mixed with these.
DKMS_OWN = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 21, 101}


def test_no_code_is_one_of_dkms_own() -> None:
    assert {int(code) for code in ExitCode} & DKMS_OWN == set()


def test_every_verdict_has_its_own_code() -> None:
    codes = [verdict.exit_code for verdict in Verdict]
    assert len(set(codes)) == len(codes)
    assert Verdict.NO_RUST.exit_code == 77  # DKMS's "skipped": the same meaning on purpose


def test_the_kernel_hook_script_knows_the_hook_failed_code() -> None:
    text = (ROOT / "dkms" / "kernel" / "50-dkms-rustc").read_text()
    assert re.findall(r'"\$status" -eq (\d+)', text) == [str(int(ExitCode.HOOK_FAILED))]


def test_the_shims_exit_with_the_error_code_when_the_tool_is_missing() -> None:
    for shim in (
        ROOT / "dkms" / "dkms-rustc-pre-build",
        ROOT / "examples" / "rust-hello" / "dkms-rustc-pre-build",
    ):
        exits = re.findall(r"^exit (\d+)", shim.read_text(), re.M)
        assert exits == [str(int(ExitCode.ERROR))], shim


def test_the_quick_start_accepts_exactly_the_verdict_codes() -> None:
    text = (ROOT / "examples" / "quickstart.sh").read_text()
    (accepted,) = re.findall(r"^\s*([0-9|]+)\) echo \"\(exit status", text, re.M)
    expected = {ExitCode.OK, ExitCode.REFUSED, ExitCode.NO_METADATA, ExitCode.NO_RUST}
    assert {int(code) for code in accepted.split("|")} == {int(code) for code in expected}


def test_readme_man_page_and_help_list_every_code() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Exit codes") :]
    rows = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)}
    man = (ROOT / "man" / "dkms-rustc.8").read_text()
    for code in ExitCode:
        if code is ExitCode.INTERRUPTED:
            continue
        assert int(code) in rows, code
        assert re.search(rf"\b{int(code)} ", man[man.index(".SH EXIT STATUS") :]), code
        assert re.search(rf"^  {int(code)} ", HELP, re.M), code
