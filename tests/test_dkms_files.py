"""The dkms.conf lines and the shim: one text, wherever it is documented or shipped."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from dkms_rustc.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "dkms" / "dkms.conf.snippet"
SHIM = ROOT / "dkms" / "dkms-rustc-pre-build"


def snippet_lines() -> list[str]:
    return [line for line in SNIPPET.read_text().splitlines() if line and not line.startswith("#")]


def test_snippet_is_the_three_documented_lines() -> None:
    lines = snippet_lines()
    assert [line.split("=", 1)[0] for line in lines] == ["PRE_BUILD", "MAKE[0]", "BUILD_EXCLUSIVE_CONFIG"]
    assert '"' not in lines[1]  # dkms re-sources dkms.conf values: no double quotes in MAKE


def test_readme_shows_the_snippet_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(PRE_BUILD=.*?)```", readme, re.DOTALL)
    assert block is not None
    assert block.group(1).splitlines() == snippet_lines()


def test_example_module_uses_the_snippet_and_a_copy_of_the_shim() -> None:
    example = ROOT / "examples" / "rust-hello"
    conf = (example / "dkms.conf").read_text().splitlines()
    for line in snippet_lines():
        assert line in conf
    assert (example / "dkms-rustc-pre-build").read_bytes() == SHIM.read_bytes()
    assert os.access(example / "dkms-rustc-pre-build", os.X_OK)


def test_shim_without_the_tool_stops_make_with_its_message(tmp_path: Path) -> None:
    """The shim as shipped, with its search list pointed at paths that do not exist."""
    shim = tmp_path / "dkms-rustc-pre-build"
    text = SHIM.read_text()
    text = re.sub(
        r"for candidate in [^;]*;", f"for candidate in {tmp_path}/absent/dkms-rustc;", text, flags=re.S
    )
    shim.write_text(text)
    shim.chmod(0o755)
    build = tmp_path / "build"
    build.mkdir()
    result = subprocess.run([str(shim), "/lib/modules/x/build"], cwd=build, capture_output=True, text=True)
    assert result.returncode == ExitCode.ERROR
    assert "the dkms-rustc tool is not installed" in result.stderr
    args = (build / "dkms-rustc.make-args").read_text().split()
    kernel = tmp_path / "kernel"
    kernel.mkdir()
    (kernel / "Makefile").write_text("all:\n\ttouch compiled\n")
    made = subprocess.run(["make", "-C", str(kernel), *args], capture_output=True, text=True)
    assert made.returncode != 0
    assert "the dkms-rustc tool is not installed" in made.stderr
    assert not (kernel / "compiled").exists()
    assert sorted(path.name for path in build.iterdir()) == ["dkms-rustc.make-args", "dkms-rustc.refused.mk"]


def test_mixed_example_uses_the_snippet_with_an_indexed_exclusion() -> None:
    """examples/mixed-hello: PRE_BUILD and MAKE[0] verbatim; BUILD_EXCLUSIVE_CONFIG for its Rust
    module only (index 1: index 0 would be the whole package)."""
    example = ROOT / "examples" / "mixed-hello"
    conf = (example / "dkms.conf").read_text().splitlines()
    pre_build, make, exclusive = snippet_lines()
    assert pre_build in conf and make in conf and exclusive not in conf
    assert 'BUILD_EXCLUSIVE_CONFIG[1]="CONFIG_RUST"' in conf
    assert 'BUILT_MODULE_NAME[1]="mixed_hello_rs"' in conf
    assert (example / "dkms-rustc-pre-build").read_bytes() == SHIM.read_bytes()
    assert os.access(example / "dkms-rustc-pre-build", os.X_OK)
