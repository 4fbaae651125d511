"""Reading a kernel build tree: minimum tool versions, required crates, split trees."""

from __future__ import annotations

from pathlib import Path

from dkms_rustc.kernel import _parse_min_tool_versions, tree_roots

# The shapes of upstream scripts/min-tool-version.sh in 6.12 and 7.2 (checked on real trees).
MIN_TOOL_6_12 = """\
case "$1" in
rustc)
	echo 1.78.0
	;;
bindgen)
	echo 0.65.1
	;;
esac
"""
MIN_TOOL_7_2 = """\
case "$1" in
rustc)
	if [ "$SRCARCH" = "s390" ]; then
		echo 1.96.0
	else
		echo 1.85.0
	fi
	;;
bindgen)
	echo 0.71.1
	;;
esac
"""


def test_min_tool_versions_6_12() -> None:
    assert _parse_min_tool_versions(MIN_TOOL_6_12) == {"rustc": "1.78.0", "bindgen": "0.65.1"}


def test_min_tool_versions_7_2_takes_the_general_branch() -> None:
    assert _parse_min_tool_versions(MIN_TOOL_7_2) == {"rustc": "1.85.0", "bindgen": "0.71.1"}


def test_debian_split_tree_makefile_is_followed(tmp_path: Path) -> None:
    common = tmp_path / "linux-headers-6.1.0-47-common"
    arch = tmp_path / "linux-headers-6.1.0-47-amd64"
    common.mkdir()
    arch.mkdir()
    # Verbatim from Debian's linux-headers-6.1.0-47-amd64 package.
    (arch / "Makefile").write_text(f"include {common}/Makefile\n")
    assert tree_roots(arch) == (arch, common)


def test_makefile_with_variables_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("include $(srctree)/Makefile\n-include .kernelvariables\n")
    assert tree_roots(tmp_path) == (tmp_path,)


def _arch(tmp_path: Path, arch: str, text: str) -> None:
    (tmp_path / "arch" / arch).mkdir(parents=True, exist_ok=True)
    (tmp_path / "arch" / arch / "Makefile").write_text(text)


def test_builtin_target_of_the_only_architecture(tmp_path: Path) -> None:
    from dkms_rustc.kernel import _target_triple

    # arm64's Makefile (Linux 6.12) names a built-in target; headers ship only arch/arm64.
    _arch(tmp_path, "arm64", "KBUILD_RUSTFLAGS += --target=aarch64-unknown-none-softfloat\n")
    assert _target_triple((tmp_path,), None) == "aarch64-unknown-none-softfloat"
    assert _target_triple((tmp_path,), tmp_path / "scripts" / "target.json") is None


def test_ambiguous_targets_are_left_alone(tmp_path: Path) -> None:
    from dkms_rustc.kernel import _target_triple

    _arch(
        tmp_path,
        "riscv",
        "ifeq ($(CONFIG_64BIT),y)\nKBUILD_RUSTFLAGS += --target=riscv64imac-unknown-none-elf\nelse\n"
        "KBUILD_RUSTFLAGS += --target=riscv32imac-unknown-none-elf\nendif\n",
    )
    assert _target_triple((tmp_path,), None) is None
    _arch(tmp_path / "two", "arm64", "KBUILD_RUSTFLAGS += --target=aarch64-unknown-none\n")
    _arch(tmp_path / "two", "x86", "KBUILD_RUSTFLAGS += --target=x86_64-unknown-none\n")
    assert _target_triple((tmp_path / "two",), None) is None
