"""The `openphm` command as a user runs it."""

import subprocess
import sys

import pytest

OPENPHM = [sys.executable, "-m", "openphm.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OPENPHM, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, expected", [
    (["--people", "0"], "--people must be at least 1000"),
    (["--format", "xml"], "--format must be one of csv, parquet"),
    (["--gp-format", "hl7"], "--gp-format must be one of table, fhir"),
    (["--years", "0"], "--years must be between 1 and 20"),
    (["--care-model-start", "2019-01"], "--care-model-start must fall within"),
])
def test_bad_arguments_give_one_line_and_nonzero_exit(tmp_path, args, expected):
    result = run("generate", "--out", str(tmp_path / "x"), *args)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_unwritable_out_gives_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("generate", "--out", str(blocker / "ics"))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is a file, not a folder" in lines[0]
    assert "Traceback" not in result.stderr


def test_generate_then_calibrate(tmp_path):
    out = tmp_path / "ics"
    result = run("generate", "--people", "2000", "--years", "2", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "apc" in result.stdout
    assert (out / "extracts" / "apc" / "apc_2021-22.csv").exists()
    assert (out / "truth" / "care_model.json").exists()
    result = run("calibrate", str(out), "--report", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "report" / "calibration.html").read_text()
    assert "<svg" in html and "Emergency admissions per 1,000" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_calibrate_on_a_folder_that_is_not_an_ics(tmp_path):
    result = run("calibrate", str(tmp_path))
    assert result.returncode != 0
    assert "has no extracts/ folder" in result.stderr
