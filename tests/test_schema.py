"""metrics.json is read by every page: a run whose file does not fit the schema is listed as
damaged with a sentence, and breaks no page."""

import json
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from cae import schema
from cae.runs import list_runs, pretrained_dir, pretrained_index
from tests.conftest import REPO

SHIPPED = pretrained_dir() / pretrained_index()["default"] / "metrics.json"


def leaves(value, path=()):
    """Every (path, value) of a JSON value's scalars."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in leaves(v, (*path, i))]
    return [(path, value)]


def replaced(metrics: dict, path: tuple, value) -> dict:
    copy = json.loads(json.dumps(metrics))
    where = copy
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    return copy


METRICS = json.loads(SHIPPED.read_text())
FIELDS = [(path, value) for path, value in leaves(METRICS) if path[0] != "config" and value is not None]


def test_every_shipped_run_fits_the_schema():
    for info in list_runs():
        if info.pretrained:
            assert info.error is None, (info.name, info.error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), st.sampled_from(["text", True, [1], {"a": 1}, 7]))
def test_any_field_of_the_wrong_type_is_named(field, wrong):
    path, value = field
    if type(wrong) is type(value) or (isinstance(value, float) and type(wrong) is int):
        return  # the same type (or an int for a float) is not wrong
    found = schema.problem(replaced(METRICS, path, wrong))
    assert found is not None and str(path[-1]) in found, (path, wrong, found)


def test_a_run_with_an_accuracy_stored_as_text_is_listed_as_damaged_and_breaks_no_page(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    broken = runs / "z16-bilinear-ae1-clf1-badbadbadbad"
    shutil.copytree(SHIPPED.parent, broken)
    (broken / "metrics.json").write_text(json.dumps(replaced(METRICS, ("classifier", 0, "test_acc"), "57.3")))
    monkeypatch.setenv("CAE_RUNS", str(runs))
    info = next(i for i in list_runs() if i.path == broken)
    assert "classifier[0].test_acc should be a number, not '57.3'" in info.error
    at = AppTest.from_file(str(Path(REPO) / "streamlit_app.py"), default_timeout=120)
    at.query_params["run"] = broken.name  # a link naming it
    at.run()
    for page in ("app_pages/overview.py", "app_pages/classifier.py", "app_pages/kernels.py", "app_pages/train.py"):
        at.switch_page(page).run()
        assert not at.exception, page
