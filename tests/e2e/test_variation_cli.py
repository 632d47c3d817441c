"""`openphm variation` on real published data: NHS England A&E attendances and 4-hour breaches by
provider and month, 2016-2019 (shared/data/ae_attendances.csv), checked against pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "ae_attendances.csv"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from openphm.cli import main; main()", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("variation")
    result = run("variation", str(DATA), "--org", "org_code", "--period", "period", "--numerator", "breaches",
                 "--denominator", "attendances", "--polarity", "lower_is_better", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result


def test_outputs_match_pandas_on_the_real_data(outputs):
    out, result = outputs
    raw = pd.read_csv(DATA)
    summed = raw.groupby(["org_code", "period"], as_index=False)[["breaches", "attendances"]].sum()
    latest = summed[(summed["period"] == summed["period"].max()) & (summed["attendances"] > 0)]
    funnel = pd.read_csv(out / "funnel.csv")
    assert len(funnel) == len(latest) and set(funnel["org"]) == set(latest["org_code"])
    pooled = latest["breaches"].sum() / latest["attendances"].sum() * 100
    inner = funnel[funnel["lower998"] > 0]  # unclipped limits are symmetric about the pooled value
    assert ((inner["lower998"] + inner["upper998"]) / 2).to_numpy() == pytest.approx(pooled)
    league = pd.read_csv(out / "league.csv").set_index("org")
    rx1 = latest.set_index("org_code").loc["RX1"]
    assert league.loc["RX1", "value"] == pytest.approx(rx1["breaches"] / rx1["attendances"] * 100)
    spc = pd.read_csv(out / "spc.csv")
    series = summed[summed["org_code"] == "RX1"].sort_values("period")
    chart = spc[spc["org"] == "RX1"]
    assert len(chart) == len(series) == 36
    assert chart["mean"].iloc[0] == pytest.approx((series["breaches"] / series["attendances"] * 100).mean())
    assert f"{summed['org_code'].nunique()} organisations, 36 periods" in result.stdout


def test_the_page_is_self_contained(outputs):
    out, _ = outputs
    html = (out / "variation.html").read_text()
    assert html.count("<svg") >= 3
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")


def test_bad_input_names_the_file_row_and_column(tmp_path):
    missing = run("variation", str(DATA), "--org", "trust", "--period", "period", "--numerator", "breaches",
                  "--denominator", "attendances", "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "no column 'trust'" in missing.stderr and "ae_attendances.csv" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("org,month,n,d\nA,2020-01,3,10\nA,2020-02,three,10\n")
    result = run("variation", str(bad), "--org", "org", "--period", "month", "--numerator", "n", "--denominator", "d",
                 "--out", str(tmp_path / "o2"))
    assert result.returncode == 2 and "row 3, column 'n'" in result.stderr and "'three'" in result.stderr
    over = tmp_path / "over.csv"
    over.write_text("org,month,n,d\nA,2020-01,30,10\n")
    result = run("variation", str(over), "--org", "org", "--period", "month", "--numerator", "n", "--denominator", "d",
                 "--out", str(tmp_path / "o3"))
    assert result.returncode == 2 and "--kind rate" in result.stderr
