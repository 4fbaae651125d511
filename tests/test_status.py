# SPDX-License-Identifier: GPL-2.0-or-later
"""``dkms-rustc status``, pins and ``dkms-rustc config`` against kernel trees real compilers wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import kerneltree
from conftest import check_json, write_config
from dkms_rustc import config, engine
from dkms_rustc.cli import main
from dkms_rustc.dkmsmodules import registered_modules
from dkms_rustc.exitcodes import ExitCode

TOOLCHAINS = kerneltree.find_real_toolchains()


# Results must not depend on this machine's /etc/dkms-rustc.conf (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_system_config")


_need = kerneltree.need


def _toolchain_dir(name: str) -> Path:
    return TOOLCHAINS[name].rustc.parent.parent


def _dkms_module(tree: Path, name: str, version: str, conf: str, files: dict[str, str] | None = None) -> Path:
    source = tree / name / version / "source"
    source.mkdir(parents=True)
    (source / "dkms.conf").write_text(conf)
    for relative, text in (files or {}).items():
        (source / relative).write_text(text)
    return source


def _install(tree: Path, name: str, version: str, kernel: str, arch: str = "x86_64") -> None:
    built = tree / name / version / kernel / arch
    (built / "module").mkdir(parents=True)
    (tree / name / f"kernel-{kernel}-{arch}").symlink_to(f"{version}/{kernel}/{arch}")


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """/lib/modules-like dir with four kernels, and a DKMS tree with Rust and C modules."""
    _need("stable", "nightly")
    modules = tmp_path / "lib-modules"
    kerneltree.make_kernel_tree(
        modules / "7.2.0-stable" / "build", TOOLCHAINS["stable"], kernelrelease="7.2.0-stable"
    )
    kerneltree.make_kernel_tree(
        modules / "7.1.0-nightly" / "build", TOOLCHAINS["nightly"], kernelrelease="7.1.0-nightly"
    )
    kerneltree.make_kernel_tree(
        modules / "6.12.0-norust" / "build",
        TOOLCHAINS["stable"],
        variant="no-rust",
        kernelrelease="6.12.0-norust",
    )
    kerneltree.make_kernel_tree(
        modules / "6.12.0-nometa" / "build",
        TOOLCHAINS["stable"],
        variant="no-metadata",
        kernelrelease="6.12.0-nometa",
    )
    (modules / "5.10.0-leftover").mkdir()  # modules dir of a removed kernel: no build tree
    dkms = tmp_path / "var-lib-dkms"
    _dkms_module(
        dkms, "hello", "1.0", 'PACKAGE_NAME="hello"\nPRE_BUILD="dkms-rustc-pre-build ${kernel_source_dir}"\n'
    )
    _install(dkms, "hello", "1.0", "7.2.0-stable")
    _dkms_module(dkms, "exclusive", "2.0", 'PACKAGE_NAME="exclusive"\nBUILD_EXCLUSIVE_CONFIG="CONFIG_RUST"\n')
    _dkms_module(dkms, "sources", "0.1", 'PACKAGE_NAME="sources"\n', {"lib.rs": "// rust\n"})
    _dkms_module(dkms, "cmodule", "3.0", 'PACKAGE_NAME="cmodule"\n', {"main.c": "/* c */\n"})
    return {"modules": modules, "dkms": dkms, "etc": tmp_path / "etc-dkms"}


def _status(
    capsys: pytest.CaptureFixture[str], world: dict[str, Path], conf: Path, *extra: str
) -> tuple[int, str]:
    code = main(
        [
            "status",
            "--modules-dir",
            str(world["modules"]),
            "--dkms-tree",
            str(world["dkms"]),
            "--dkms-etc",
            str(world["etc"]),
            "--config",
            str(conf),
            "--search",
            str(_toolchain_dir("stable")),
            *extra,
        ]
    )
    return code, capsys.readouterr().out


def test_status_json_has_one_check_object_per_kernel_and_the_rust_modules(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _status(capsys, world, write_config(tmp_path), "--json")
    data = json.loads(out)
    verdicts = {kernel["kernel"]["release"]: kernel["verdict"] for kernel in data["kernels"]}
    assert verdicts == {
        "7.2.0-stable": "ok",
        "7.1.0-nightly": "refused",
        "6.12.0-norust": "no-rust",
        "6.12.0-nometa": "no-metadata",
    }
    assert code == ExitCode.REFUSED == data["exit_code"]
    # the same fields as `check --json`
    check_code = main(
        [
            "check",
            "--json",
            "--kernel-dir",
            str(world["modules"] / "7.2.0-stable" / "build"),
            "--config",
            str(write_config(tmp_path)),
            "--search",
            str(_toolchain_dir("stable")),
        ]
    )
    check = json.loads(capsys.readouterr().out)
    assert check_code == 0
    stable = next(kernel for kernel in data["kernels"] if kernel["verdict"] == "ok")
    assert set(stable) == {*check, "running"}
    assert stable["selected"]["rustc"] == check["selected"]["rustc"]
    modules = {module["name"]: module for module in data["modules"]}
    assert set(modules) == {"hello", "exclusive", "sources"}  # cmodule is C only
    assert modules["hello"]["uses_dkms_rustc"] is True
    assert modules["hello"]["builds"] == [{"kernel": "7.2.0-stable", "arch": "x86_64", "installed": True}]
    assert modules["exclusive"]["uses_dkms_rustc"] is False
    assert "lib.rs" in modules["sources"]["rust_reasons"][0]


def test_status_table_verdict_first_one_line_per_kernel(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _status(capsys, world, write_config(tmp_path))
    lines = out.splitlines()
    assert code == ExitCode.REFUSED
    assert lines[0].startswith("ATTENTION: 2 of 4 kernels can build Rust modules")
    assert "3 Rust DKMS modules registered" in lines[0]
    header = lines[2]
    assert header.split() == ["VERDICT", "KERNEL", "NEEDS", "RUSTC", "BINDGEN", "WHAT", "TO", "DO"]
    rows = {line.split()[1]: line for line in lines[3:7]}
    assert set(rows) == {"7.2.0-stable", "7.1.0-nightly", "6.12.0-norust", "6.12.0-nometa"}
    assert rows["7.2.0-stable"].startswith("OK ")
    assert str(TOOLCHAINS["stable"].rustc.resolve()) in rows["7.2.0-stable"]
    assert rows["7.1.0-nightly"].startswith("REFUSED ")
    assert TOOLCHAINS["nightly"].version_text in rows["7.1.0-nightly"]
    assert "none matches" in rows["7.1.0-nightly"]
    assert "rustup toolchain install nightly-" in rows["7.1.0-nightly"]
    assert rows["6.12.0-norust"].startswith("SKIPPED ")
    assert rows["6.12.0-nometa"].startswith("REFUSED ") and "lack the Rust metadata" in rows["6.12.0-nometa"]
    # newest kernel first
    assert [line.split()[1] for line in lines[3:7]] == [
        "7.2.0-stable",
        "7.1.0-nightly",
        "6.12.0-norust",
        "6.12.0-nometa",
    ]
    module_lines = "\n".join(lines[8:])
    assert "hello/1.0 [dkms-rustc;" in module_lines
    assert "7.2.0-stable: installed" in module_lines
    assert "7.1.0-nightly: not built, would be refused" in module_lines
    assert "exclusive/2.0 [NOT dkms-rustc" in module_lines


def test_status_discovers_toolchains_once(
    world: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []
    real = engine.discover_toolchains

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "discover_toolchains", counting)
    _status(capsys, world, write_config(tmp_path), "--json")
    assert len(calls) == 1


def test_status_everything_fine_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need("stable")
    modules = tmp_path / "mods"
    kerneltree.make_kernel_tree(modules / "7.2.0-a" / "build", TOOLCHAINS["stable"], kernelrelease="7.2.0-a")
    code = main(
        [
            "status",
            "--modules-dir",
            str(modules),
            "--dkms-tree",
            str(tmp_path / "none"),
            "--config",
            str(write_config(tmp_path)),
            "--search",
            str(_toolchain_dir("stable")),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("OK: 1 of 1 kernels can build Rust modules")
    assert "0 Rust DKMS modules registered" in out


def test_registered_modules_reads_overrides(tmp_path: Path) -> None:
    tree, etc = tmp_path / "tree", tmp_path / "etc"
    _dkms_module(tree, "plain", "1", 'PACKAGE_NAME="plain"\n')
    etc.mkdir()
    (etc / "plain.conf").write_text("MAKE[0]='make \\$(/usr/share/dkms-rustc/dkms-rustc-pre-build x)'\n")
    (module,) = registered_modules(tree, etc)
    assert module.is_rust and module.uses_dkms_rustc
    assert str(etc / "plain.conf") in module.rust_reasons[0]


# ---------------------------------------------------------------- pins


def _copy_of(name: str, dest: Path) -> Path:
    """A second, separately-located copy of a real toolchain: its own bin/rustc file (so
    discovery keeps it apart from the original), the original's lib/ (a link)."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(TOOLCHAINS[name].rustc, dest / "bin" / "rustc")
    (dest / "lib").symlink_to(_toolchain_dir(name) / "lib")
    return dest


def test_pin_selects_among_matching_compilers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"], kernelrelease="7.2.3-pin")
    copy = _copy_of("stable", tmp_path / "copy")
    searches = ["--search", str(copy), "--search", str(_toolchain_dir("stable"))]
    # Two places hold the kernel's compiler; without a pin the first one searched is used ...
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(write_config(tmp_path)), *searches
    )
    assert code == 0 and data["selected"]["rustc"] == str(copy / "bin" / "rustc")
    # ... and a pin chooses the other, and says so.
    conf = write_config(tmp_path, f"pin = 7.2.* {TOOLCHAINS['stable'].rustc}\n")
    code, data = check_json(capsys, "--kernel-dir", str(tree), "--config", str(conf), *searches)
    assert code == 0
    assert data["selected"]["rustc"] == str(TOOLCHAINS["stable"].rustc.resolve())
    assert any("selected because of pin 7.2.* " in line for line in data["messages"])


def test_pin_that_does_not_match_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable", "nightly")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["nightly"], kernelrelease="7.2.3-pin")
    conf = write_config(tmp_path, f"pin = 7.2.* {TOOLCHAINS['stable'].rustc}\n")
    code, data = check_json(
        capsys,
        "--kernel-dir",
        str(tree),
        "--config",
        str(conf),
        "--search",
        str(_toolchain_dir("nightly")),
    )
    # the right compiler is still selected: the pin never wins over correctness
    assert code == 0, data["messages"]
    assert data["selected"]["rustc"] == str(TOOLCHAINS["nightly"].rustc.resolve())
    warning = next(w for w in data["warnings"] if "refused" in w)
    assert f"pin 7.2.* {TOOLCHAINS['stable'].rustc}" in warning
    assert TOOLCHAINS["stable"].version_text in warning and TOOLCHAINS["nightly"].version_text in warning
    assert f"{conf}:3" in warning


def test_pin_alone_cannot_make_a_wrong_compiler_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("stable", "nightly")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["nightly"], kernelrelease="7.2.3-pin")
    conf = write_config(tmp_path, f"pin = * {TOOLCHAINS['stable'].rustc}\n")
    code, data = check_json(capsys, "--kernel-dir", str(tree), "--config", str(conf))
    assert code == ExitCode.REFUSED
    assert data["verdict"] == "refused"
    assert any("refused" in w and "pin * " in w for w in data["warnings"])


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("nightly", "ok"),  # rustup toolchain name, host added
        ("no-such-toolchain", "no rustup toolchain named no-such-toolchain"),
        ("/nonexistent/rustc", "/nonexistent/rustc does not exist"),
    ],
)
def test_pin_by_rustup_name_or_path(
    target: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _need("nightly")
    rustup_home = _toolchain_dir("nightly").parent.parent
    if not (rustup_home / "toolchains").is_dir():
        pytest.skip("the nightly toolchain is not in a rustup home")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["nightly"], kernelrelease="7.2.3-pin")
    conf = write_config(tmp_path, f"pin = 7.2.3-pin {target}\n")
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(conf), "--search", str(rustup_home)
    )
    assert code == 0
    if expected == "ok":
        assert any("selected because of pin" in line for line in data["messages"])
    else:
        assert any(expected in w for w in data["warnings"])


def test_pin_for_other_kernels_has_no_effect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need("stable")
    tree = kerneltree.make_kernel_tree(tmp_path / "tree", TOOLCHAINS["stable"], kernelrelease="7.2.3-pin")
    conf = write_config(tmp_path, "pin = 6.* /nonexistent/rustc\n")
    code, data = check_json(
        capsys, "--kernel-dir", str(tree), "--config", str(conf), "--search", str(_toolchain_dir("stable"))
    )
    assert code == 0
    assert not any("pin 6.*" in line for line in data["messages"])


# ---------------------------------------------------------------- config


def test_config_command_shows_values_and_origins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "extra.conf"
    conf.write_text("policy = warn\npin = 7.* /opt/rust/bin/rustc\n[module bcachefs]\npolicy = fallback\n")
    assert main(["config", "--config", str(conf), "--module", "bcachefs"]) == 0
    out = capsys.readouterr().out
    assert "policy = fallback" in out and f"# {conf}:4 [module bcachefs]" in out
    assert "pin = 7.* /opt/rust/bin/rustc" in out and f"# {conf}:2" in out
    assert "auto_install = no" in out and "# default" in out
    assert main(["config", "--config", str(conf), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["key"]: row for row in data["settings"]}
    assert set(rows) == set(config.KEYS)
    assert rows["policy"] == {**rows["policy"], "value": "warn", "origin": f"{conf}:1"}


def test_config_command_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("auto_install = rustup\n")
    assert main(["config", "--config", str(conf)]) == ExitCode.ERROR
    assert "auto_install is honoured only in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pin = 7.*", "expected pin = PATTERN TOOLCHAIN"),
        ("pin = 7.* rel/path", "neither an absolute rustc path nor a rustup toolchain name"),
        ("auto_install = apt", "auto_install must be one of"),
        ("syslog = loud", "expected yes or no"),
    ],
)
def test_new_keys_are_validated(text: str, message: str) -> None:
    with pytest.raises(config.ConfigFileError, match=message):
        config.parse(text, "f", None, system=True, base=config.Settings())


def test_a_kernel_without_headers_is_not_an_alarm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """/lib/modules/<release> without build/ (headers removed, or never installed)."""
    modules = tmp_path / "modules"
    (modules / "9.9.9-gone").mkdir(parents=True)
    (modules / "9.9.9-gone" / "build").symlink_to(tmp_path / "absent")  # dangling, as after a removal
    code = main(
        ["status", "--modules-dir", str(modules), "--dkms-tree", str(tmp_path / "dkms"), "--no-cache"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("OK: 0 of 1 kernels can build Rust modules (1 without headers)")
    assert "its headers are not installed" in out
