"""Saving and loading the risk models as data that cannot execute code.

A models folder (written by `openphm risk train`) holds:

- `models.json`: the features, the better model, the training date, the training means, the
  logistic model as numbers (scaler means and scales, coefficients, intercept, which features are
  counts, the age knots) and the SHA-256 of the LightGBM model;
- `lightgbm.txt`: LightGBM's own text model (`Booster.model_to_string`, read back with
  `lgb.Booster(model_str=...)`);
- `models.hmac`: HMAC-SHA256 of models.json under a key derived from the installation's secret
  key (`<db>-secrets/pseudonym.key`), so only this installation's `openphm risk train` can write
  models that its `openphm risk score` accepts;
- `report.json`, `report.html`: the validation report.

Nothing is ever unpickled: a folder holding any other file (an old `models.joblib`, a `.pkl`) is
refused with the file's name, before anything in it is read. With a key, the signature is checked
before models.json is parsed, and the LightGBM text is checked against its SHA-256 before LightGBM
parses it. The files are 600 and the folder 700 (openphm.engine.files).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from pathlib import Path

import lightgbm as lgb
import numpy as np

from openphm.derive.features import feature_names
from openphm.engine.connection import Connection
from openphm.engine.duckdb_store import Store
from openphm.engine.files import private_dir, write_private
from openphm.risk.model import AGE_KNOTS, BoostedModel, LogisticModel

FORMAT = "openphm-risk-models"
VERSION = 1
MANIFEST = "models.json"
LIGHTGBM = "lightgbm.txt"
SIGNATURE = "models.hmac"
REPORTS = ("report.json", "report.html")
ALLOWED = frozenset({MANIFEST, LIGHTGBM, SIGNATURE, *REPORTS})
KEY_PURPOSE = b"openphm risk models v1"


def model_key(store: Store) -> bytes:
    """The key that signs risk models: derived (HMAC with a fixed purpose) from the store's secret key."""
    return hmac.new(store.key(), KEY_PURPOSE, hashlib.sha256).digest()


def installation_key(con: Connection) -> bytes | None:
    """The model key (model_key) of the store the connection's database belongs to; None for an
    in-memory DuckDB database. A Spark connection belongs to the store that opened it (`store_db`,
    set by openphm.engine.open_engine); one opened otherwise is refused, so that models are never
    loaded there unchecked (pass `model_key(store)` of the installation instead)."""
    if getattr(con, "dialect", None) == "spark":
        if getattr(con, "store_db", None) is not None:
            return model_key(Store(Path(con.store_db)))
        raise ValueError("a Spark catalogue has no OpenPHM store to take the models' key from: pass the "
                         "installation's key (openphm.risk.model_files.model_key)")
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if not row or not row[0]:
        return None
    return model_key(Store(Path(row[0])))


def check_folder(model_dir: Path) -> None:
    """Refuse a models folder that holds anything but the files `openphm risk train` writes."""
    if not model_dir.is_dir():
        return
    for entry in sorted(model_dir.iterdir()):
        if entry.name not in ALLOWED or not entry.is_file() or entry.is_symlink():
            raise ValueError(f"{entry}: not an OpenPHM model file (models are read only from {MANIFEST} and "
                             f"{LIGHTGBM}; pickles are never loaded): remove it or use another folder")


def _signature(key: bytes, manifest: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float)]


def _describe(name: str, model: LogisticModel | BoostedModel, lightgbm_sha256: str) -> dict:
    if isinstance(model, LogisticModel):
        return {"kind": "logistic", "mean": _floats(model.mean), "scale": _floats(model.scale),
                "coef": _floats(model.coef), "intercept": float(model.intercept),
                "count_columns": [bool(c) for c in model.count_columns], "age_knots": list(AGE_KNOTS)}
    if isinstance(model, BoostedModel):
        return {"kind": "lightgbm", "file": LIGHTGBM, "sha256": lightgbm_sha256}
    raise TypeError(f"model {name!r}: cannot save a {type(model).__name__}")


def save_models(models: dict[str, LogisticModel | BoostedModel], out: Path, best: str, train_date: str,
                feature_means: list[float], key: bytes | None = None) -> Path:
    """Write the models into `out` (see the module's note); returns the manifest's path."""
    boosted = [m for m in models.values() if isinstance(m, BoostedModel)]
    if len(boosted) > 1:
        raise ValueError("only one LightGBM model can be saved in a models folder")
    check_folder(out)
    private_dir(out)
    digest = ""
    if boosted:
        text = boosted[0].booster.model_to_string().encode("utf-8")
        write_private(out / LIGHTGBM, text)
        digest = hashlib.sha256(text).hexdigest()
    manifest = {"format": FORMAT, "version": VERSION, "features": feature_names(), "best": best,
                "train_date": train_date, "feature_means": _floats(feature_means),
                "models": {name: _describe(name, m, digest) for name, m in models.items()}}
    data = json.dumps(manifest, indent=1, allow_nan=False).encode("utf-8")
    path = write_private(out / MANIFEST, data)
    if key is not None:
        write_private(out / SIGNATURE, _signature(key, data) + "\n")
    else:
        (out / SIGNATURE).unlink(missing_ok=True)
    return path


def _array(spec: dict, field: str, length: int) -> np.ndarray:
    values = spec[field]
    if not isinstance(values, list) or len(values) != length or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ValueError(f"{field}: expected {length} finite numbers")
    return np.asarray(values, dtype=float)


def _logistic(spec: dict, n: int) -> LogisticModel:
    if spec.get("age_knots") != list(AGE_KNOTS):
        raise ValueError(f"age_knots: expected {list(AGE_KNOTS)}")
    width = n + len(AGE_KNOTS)
    scale = _array(spec, "scale", width)
    if (scale <= 0).any():
        raise ValueError("scale: expected positive numbers")
    counts = spec["count_columns"]
    if not isinstance(counts, list) or len(counts) != n or not all(isinstance(c, bool) for c in counts):
        raise ValueError(f"count_columns: expected {n} true/false values")
    intercept = _array({"intercept": [spec["intercept"]]}, "intercept", 1)[0]
    return LogisticModel(_array(spec, "mean", width), scale, _array(spec, "coef", width), float(intercept),
                         np.array(counts, dtype=bool))


def _boosted(spec: dict, model_dir: Path, names: list[str]) -> BoostedModel:
    path = model_dir / LIGHTGBM  # the file name is fixed, never taken from the manifest
    if spec.get("file") != LIGHTGBM or not path.is_file():
        raise ValueError(f"no {LIGHTGBM} beside it")
    text = path.read_bytes()
    if not hmac.compare_digest(hashlib.sha256(text).hexdigest(), str(spec.get("sha256"))):
        raise ValueError(f"{LIGHTGBM} does not match the SHA-256 recorded when it was trained")
    booster = lgb.Booster(model_str=text.decode("utf-8"))
    if booster.feature_name() != names:
        raise ValueError(f"{LIGHTGBM} was trained on different features")
    return BoostedModel(booster)


def load_models(model_dir: Path, key: bytes | None = None) -> dict:
    """The saved models and their metadata: {"models", "features", "best", "train_date",
    "feature_means"}. With `key` (see installation_key) the signature must match. Raises ValueError
    with a one-line message naming the file for anything else."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST
    if not model_dir.is_dir():
        raise ValueError(f"{model_dir}: no such folder (run `openphm risk train --out {model_dir}` first)")
    check_folder(model_dir)
    if not path.is_file():
        raise ValueError(f"{model_dir}: no {MANIFEST} (run `openphm risk train --out {model_dir}` first)")
    data = path.read_bytes()
    if key is not None:
        sig = model_dir / SIGNATURE
        found = sig.read_text(encoding="ascii", errors="replace").strip() if sig.is_file() else ""
        if not hmac.compare_digest(found, _signature(key, data)):
            raise ValueError(f"{path}: {'signature does not match' if found else 'no ' + SIGNATURE + ' beside it'}; "
                             "only models trained by `openphm risk train` on this installation are loaded "
                             "(train again)")
    names = feature_names()
    try:
        manifest = json.loads(data)
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise ValueError(f"not {FORMAT} version {VERSION}")
        if manifest["features"] != names:
            raise ValueError("trained on different features; train again")
        models: dict[str, LogisticModel | BoostedModel] = {}
        for name, spec in manifest["models"].items():
            kind = spec.get("kind")
            if kind == "logistic":
                models[name] = _logistic(spec, len(names))
            elif kind == "lightgbm":
                models[name] = _boosted(spec, model_dir, names)
            else:
                raise ValueError(f"model {name!r} is of unknown kind {kind!r}")
        if "logistic" not in models or manifest["best"] not in models:
            raise ValueError("the logistic model and the better model must both be saved")
        return {"models": models, "features": names, "best": str(manifest["best"]),
                "train_date": str(manifest["train_date"]),
                "feature_means": _array(manifest, "feature_means", len(names))}
    except (ValueError, KeyError, TypeError, AttributeError, lgb.basic.LightGBMError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a valid model file ({message})") from None
