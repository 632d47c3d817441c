"""Risk models are saved as data (JSON numbers and LightGBM's text model) and loaded without pickle:
a saved-and-loaded model scores exactly as the one in memory, a pickle in the models folder is refused
by name and never executed, the signature ties models to the installation, and the files are the
owner's only whatever the umask."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from openphm.cli import app  # with every command registered
from openphm.derive.features import feature_names
from openphm.engine.duckdb_store import Store
from openphm.engine.files import mode
from openphm.ingest.loader import open_store
from openphm.risk.model import train_models
from openphm.risk.model_files import KEY_PURPOSE, installation_key, load_models, save_models
from openphm.risk.score import predict_and_explain

KEY = b"k" * 32


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def trained() -> tuple[dict, pl.DataFrame]:
    """Both models fitted on 3,000 made-up people whose risk rises with age, frailty and admissions."""
    rng = np.random.default_rng(3)
    n = 3000
    data = {name: rng.poisson(1.0, n).astype(float) for name in feature_names()}
    data["age"] = rng.integers(0, 100, n).astype(float)
    data["days_since_emergency_admission"] = rng.integers(0, 5000, n).astype(float)
    data["efi"] = rng.random(n)
    logit = -3 + 0.03 * data["age"] + 2 * data["efi"] + 0.5 * data["emergency_admissions_12m"]
    frame = pl.DataFrame(data).with_columns(
        pl.Series("outcome", (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)))
    return train_models(frame), frame


def _x(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(feature_names()).to_numpy().astype(float)


def _save(models: dict, out: Path, key: bytes | None = KEY) -> Path:
    return save_models(models, out, "lightgbm", "2023-04-01", [0.0] * len(feature_names()), key)


class MakesMarker:
    """A pickle that, when loaded, creates a file (as a crafted model would run a shell command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_saved_and_loaded_models_score_exactly_as_in_memory(trained, tmp_path):
    models, frame = trained
    _save(models, tmp_path / "m")
    loaded = load_models(tmp_path / "m", KEY)
    assert loaded["best"] == "lightgbm" and loaded["train_date"] == "2023-04-01"
    x = _x(frame)
    in_memory = {"models": models}
    for name in ("logistic", "lightgbm"):
        assert np.array_equal(models[name].predict(x), loaded["models"][name].predict(x)), name
        assert np.array_equal(models[name].contributions(x[:200]), loaded["models"][name].contributions(x[:200]))
        risk, reasons = predict_and_explain(in_memory, name, x)
        risk2, reasons2 = predict_and_explain(loaded, name, x)
        assert np.array_equal(risk, risk2) and reasons == reasons2
    # the files are what the module says: JSON numbers and LightGBM text, nothing else
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["lightgbm.txt", "models.hmac", "models.json"]
    assert (tmp_path / "m" / "lightgbm.txt").read_text().startswith("tree")
    assert json.loads((tmp_path / "m" / "models.json").read_text())["models"]["logistic"]["kind"] == "logistic"


def test_logistic_model_predicts_as_sklearn(trained):
    """The logistic model kept as numbers gives sklearn's predict_proba."""
    from sklearn.linear_model import LogisticRegression

    models, frame = trained
    m = models["logistic"]
    sk = LogisticRegression()
    sk.coef_, sk.intercept_, sk.classes_ = m.coef[None, :], np.array([m.intercept]), np.array([0, 1])
    t = m.transform(_x(frame))
    assert np.allclose(sk.predict_proba(t)[:, 1], m.predict(_x(frame)), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["models.joblib", "evil.pkl", ".hidden"])
def test_a_pickle_in_the_models_folder_is_refused_and_never_run(trained, tmp_path, name):
    models, _ = trained
    out = tmp_path / "m"
    _save(models, out)
    marker = tmp_path / "marker"
    (out / name).write_bytes(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(ValueError, match=rf"{name}: not an OpenPHM model file") as err:
        load_models(out, KEY)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    with pytest.raises(ValueError, match=name):  # and training into it is refused before any work
        _save(models, out)


def test_an_old_joblib_folder_is_refused(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "models.joblib").write_bytes(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(ValueError, match=r"models\.joblib: not an OpenPHM model file"):
        load_models(tmp_path / "m")
    assert not marker.exists()


@pytest.mark.parametrize("target", ["models.json", "lightgbm.txt"])
def test_a_pickle_under_a_model_files_name_is_refused_and_never_run(trained, tmp_path, target):
    models, _ = trained
    out = tmp_path / "m"
    _save(models, out, key=None)
    marker = tmp_path / "marker"
    (out / target).write_bytes(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(ValueError, match=r"models.json: not a valid model file"):
        load_models(out)
    assert not marker.exists()


def test_the_signature_ties_models_to_the_installation(trained, tmp_path):
    models, _ = trained
    out = tmp_path / "m"
    _save(models, out)
    with pytest.raises(ValueError, match="signature does not match"):
        load_models(out, b"another installation's key.....")
    manifest = json.loads((out / "models.json").read_text())
    manifest["models"]["logistic"]["intercept"] += 1
    (out / "models.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"models.json: signature does not match"):
        load_models(out, KEY)
    _save(models, out, key=None)
    with pytest.raises(ValueError, match=r"models.json: no models.hmac"):
        load_models(out, KEY)
    # a changed LightGBM text is refused before LightGBM reads it
    _save(models, out)
    (out / "lightgbm.txt").write_text((out / "lightgbm.txt").read_text().replace("tree", "tree ", 1))
    with pytest.raises(ValueError, match=r"lightgbm\.txt does not match the SHA-256"):
        load_models(out, KEY)


def test_the_key_comes_from_the_stores_secret(tmp_path):
    db = tmp_path / "openphm.duckdb"
    _, con = open_store(db)
    expected = hmac.new(Store(db).key(), KEY_PURPOSE, hashlib.sha256).digest()
    assert installation_key(con) == expected
    con.close()
    assert installation_key(duckdb.connect()) is None


def test_model_files_are_the_owners_only(trained, tmp_path, umask_022):
    models, _ = trained
    out = tmp_path / "new" / "m"
    _save(models, out)
    assert mode(out) == 0o700
    for f in out.iterdir():
        assert mode(f) == 0o600, f.name
    (out / "models.json").chmod(0o644)
    out.chmod(0o755)
    _save(models, out)  # saving again tightens them
    assert mode(out) == 0o700 and mode(out / "models.json") == 0o600


def test_risk_score_refuses_a_pickle_with_one_line_naming_the_file(trained, tmp_path):
    models, _ = trained
    db = tmp_path / "openphm.duckdb"
    _, con = open_store(db)
    key = installation_key(con)
    con.close()
    out = tmp_path / "m"
    _save(models, out, key)
    marker = tmp_path / "marker"
    (out / "models.joblib").write_bytes(pickle.dumps(MakesMarker(marker)))
    result = CliRunner().invoke(app, ["risk", "score", "--models", str(out), "--db", str(db), "--as-of",
                                      "2024-04-01"])
    assert result.exit_code != 0
    assert "models.joblib: not an OpenPHM model file" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not marker.exists()
