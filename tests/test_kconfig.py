"""kbuild configuration in both quoting styles, written as kbuild writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkms_rustc.kconfig import ConfigError, parse_config_text, read_config, unquote

DOT_CONFIG = r"""#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
CONFIG_RUSTC_VERSION=109600
CONFIG_RUSTC_VERSION_TEXT="rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)"
CONFIG_RUST_IS_AVAILABLE=y
CONFIG_RUSTC_LLVM_VERSION=190107
CONFIG_BINDGEN_VERSION_TEXT="bindgen 0.71.1"
CONFIG_RUST=y
# CONFIG_CC_IS_CLANG is not set
CONFIG_EXTRA="a \"quoted\" back\\slash"
"""

AUTO_CONF = """\
CONFIG_RUSTC_VERSION_TEXT=rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)
CONFIG_BINDGEN_VERSION_TEXT=bindgen 0.71.1
CONFIG_RUSTC_VERSION=109600
CONFIG_RUST=y
"""


def test_dot_config_quoted() -> None:
    values = parse_config_text(
        DOT_CONFIG,
        (
            "CONFIG_RUSTC_VERSION_TEXT",
            "CONFIG_RUST",
            "CONFIG_EXTRA",
            "CONFIG_CC_IS_CLANG",
            "CONFIG_RUSTC_LLVM_VERSION",
        ),
    )
    assert values["CONFIG_RUSTC_VERSION_TEXT"] == (
        "rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)"
    )
    assert values["CONFIG_RUST"] == "y"
    assert values["CONFIG_EXTRA"] == 'a "quoted" back\\slash'
    assert values["CONFIG_RUSTC_LLVM_VERSION"] == "190107"
    assert "CONFIG_CC_IS_CLANG" not in values


def test_auto_conf_unquoted() -> None:
    values = parse_config_text(AUTO_CONF)
    assert values["CONFIG_RUSTC_VERSION_TEXT"].endswith("(built from a source tarball)")
    assert values["CONFIG_BINDGEN_VERSION_TEXT"] == "bindgen 0.71.1"


def test_unquote_leaves_unbalanced_values() -> None:
    assert unquote('"half') == '"half'
    assert unquote("plain") == "plain"
    assert unquote('""') == ""


def test_read_config_numbers(tmp_path: Path) -> None:
    path = tmp_path / "auto.conf"
    path.write_text(AUTO_CONF)
    config = read_config(path)
    assert config.number("CONFIG_RUSTC_VERSION") == 109600
    assert config.enabled("CONFIG_RUST")
    assert not config.enabled("CONFIG_CC_IS_CLANG")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00\x01binary", "binary data"), (b"hello world\n", "no CONFIG_ lines")],
)
def test_read_config_rejects_non_config(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / ".config"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        read_config(path)


def test_read_config_tolerates_bad_utf8_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_bytes(b'CONFIG_RUST=y\r\nCONFIG_RUSTC_VERSION_TEXT="rustc \xff"\r\n')
    config = read_config(path)
    assert config.enabled("CONFIG_RUST")
    assert config.get("CONFIG_RUSTC_VERSION_TEXT") == "rustc \ufffd"
