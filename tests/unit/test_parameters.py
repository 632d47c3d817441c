import copy
import json
from importlib import resources

import jsonschema
import pytest
import yaml

from openphm.synth.parameters import load_items, load_parameters


def _schema(name):
    return json.loads((resources.files("openphm.synth") / "data" / name).read_text())


def test_shipped_parameter_files_are_valid():
    params = load_parameters()
    items = load_items()
    assert abs(sum(params["population"]["age_band_share"]) - 100) < 1
    # REFERENCE.md names 13 conditions; the generator has at least 15 long-term conditions
    assert items.condition_mask.sum() >= 15
    names, matrix = items.efi_matrix()
    assert len(names) == 36  # the electronic Frailty Index's 36 deficits (Clegg et al. 2016)
    assert matrix.sum(axis=0).min() >= 1


def test_schema_rejects_a_broken_condition():
    text = (resources.files("openphm.synth") / "data" / "conditions.yaml").read_text()
    data = yaml.safe_load(text)
    broken = copy.deepcopy(data)
    broken["items"][0]["target"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _schema("conditions.schema.json"))
    broken = copy.deepcopy(data)
    broken["items"][0]["snomed"] = "not-a-code"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _schema("conditions.schema.json"))


def test_schema_rejects_a_short_rate_curve():
    params = copy.deepcopy(load_parameters())
    params["activity_per_1000"]["ae_attendance"] = params["activity_per_1000"]["ae_attendance"][:-1]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(params, _schema("parameters.schema.json"))
