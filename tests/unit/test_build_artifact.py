"""What `sam build` produces (`./dev build`, run by `./dev test` before the tests): compiled bytecode for
every module, so that a cold start on Lambda's read-only file system never compiles, and nothing else.

The artifact is read where the build left it; without one the tests are skipped, except in CI, where
the build always runs first and a missing artifact is a failure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD = REPO_ROOT / ".aws-sam" / "build"
ARTIFACTS = {
    "SharedLayer": "python",
    "ApiFunction": "api",
    "GeneratorFunction": "generator",
    "SweeperFunction": "sweeper",
    "ScheduledExportFunction": "scheduled_export",
}
# PEP 552: flags word after the magic number; bit 0 = hash-based, bit 1 = check the source.
HASH_BASED_UNCHECKED = 0b01


@pytest.fixture(scope="module")
def build() -> Path:
    if not (BUILD / "SharedLayer").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("no sam build output: ./dev test builds before it tests")
        pytest.skip("no sam build output here (run ./dev build)")
    return BUILD


def sources(root: Path) -> list[Path]:
    return [path for path in root.rglob("*.py") if "__pycache__" not in path.parts]


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_every_module_ships_with_bytecode_for_the_lambda_runtime(build, artifact):
    root = build / artifact
    modules = sources(root)
    assert (root / ARTIFACTS[artifact]).is_dir()
    assert len(modules) > 0
    missing = [
        path.relative_to(root)
        for path in modules
        if not (path.parent / "__pycache__" / f"{path.stem}.cpython-312.pyc").is_file()
    ]
    assert missing == [], f"{len(missing)} modules without python3.12 bytecode, e.g. {missing[:5]}"


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_the_bytecode_is_not_checked_against_sources_and_none_is_for_another_python(build, artifact):
    compiled = list((build / artifact).rglob("*.pyc"))
    other_pythons = [path.name for path in compiled if ".cpython-312." not in path.name]
    assert other_pythons == []
    flags = {int.from_bytes(path.read_bytes()[4:8], "little") for path in compiled}
    assert flags == {HASH_BASED_UNCHECKED}


def test_the_layer_holds_the_pinned_runtime_dependencies_for_arm64_and_nothing_for_development(build):
    site = build / "SharedLayer" / "python"
    pins = dict(
        re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line).groups()
        for line in (REPO_ROOT / "layers/shared/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    installed = dict(
        path.name.removesuffix(".dist-info").lower().replace("_", "-").rsplit("-", 1)
        for path in site.glob("*.dist-info")
    )
    for name, version in pins.items():
        assert installed.get(name.lower().replace("_", "-")) == version, name
    assert not {"moto", "pytest", "aws-sam-cli", "ruff"} & set(installed)
    compiled_extensions = [path.name for path in site.rglob("*.so")]
    assert compiled_extensions and all("aarch64" in name for name in compiled_extensions), compiled_extensions[:5]
    assert (site / "report_export" / "generation" / "slices.py").is_file()
