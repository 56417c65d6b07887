"""Rendered examples and CRDs checked by validators Hygie did not write.

The golden files are exactly what `hygie render` prints for the examples (a Rust test fails
on any drift), so validating them validates the renderer's output.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN = sorted((REPO / "tests" / "golden").glob("*.yaml"))
CRDS = sorted((REPO / "crds").glob("*.yaml"))
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
KUBERNETES_VERSIONS = ["1.33", "1.37"]


def kubernetes_validate(version, files):
    return subprocess.run(
        [VENV_BIN / "kubernetes-validate", "--strict", "--quiet", "-k", version, *map(str, files)],
        capture_output=True,
        text=True,
    )


def checkov(directory):
    """Runs checkov offline and returns its summary."""
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    result = subprocess.run(
        [VENV_BIN / "checkov", "--framework", "kubernetes", "-d", str(directory),
         "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    skipped = [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])]
    summary = {
        "skipped": [c["check_id"] for c in skipped],
        "passed": sum(r["summary"]["passed"] for r in reports),
        "failed": sum(r["summary"]["failed"] for r in reports),
        "resources": sum(r["summary"]["resource_count"] for r in reports),
        "failures": [f'{c["check_id"]} {c["resource"]} ({c["file_path"]})' for c in failed],
    }
    return summary


def test_every_provider_has_a_golden_render():
    names = {path.stem for path in GOLDEN}
    assert {"ovhcloud", "scaleway", "outscale", "orange", "s3ns", "airlock"} <= names
    # The six CRDs and the admission policies that go with them, all validated below.
    assert len(CRDS) == 7


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_examples_pass_kubernetes_validate_strict(version):
    result = kubernetes_validate(version, GOLDEN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_crds_pass_kubernetes_validate_strict(version):
    result = kubernetes_validate(version, CRDS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_examples_have_no_checkov_failure(tmp_path):
    for path in GOLDEN:
        shutil.copy(path, tmp_path / path.name)
    summary = checkov(tmp_path)
    assert summary["failed"] == 0, "\n".join(summary["failures"])
    assert summary["passed"] > 100, summary
    objects = sum(path.read_text().count("\n---\n") + 1 for path in GOLDEN)
    assert summary["resources"] >= objects, summary


def test_the_validators_catch_a_weakened_workload(tmp_path):
    """A negative control: the same files, one field weakened, must fail both validators."""
    source = (REPO / "tests" / "golden" / "scaleway.yaml").read_text()
    assert "readOnlyRootFilesystem: true" in source
    (tmp_path / "weakened.yaml").write_text(
        source.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    )
    summary = checkov(tmp_path)
    assert any(f.startswith("CKV_K8S_22 ") for f in summary["failures"]), summary

    (tmp_path / "weakened.yaml").write_text(
        source.replace("automountServiceAccountToken: false", "automountServiceAccountTokn: false")
    )
    result = kubernetes_validate("1.33", [tmp_path / "weakened.yaml"])
    assert result.returncode != 0
    assert "automountServiceAccountTokn" in result.stdout
