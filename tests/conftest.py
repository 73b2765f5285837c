import os

import pytest

from nelm.assessment import assess
from nelm.testing import make_patient


# The servers the tests start do not draw every outcome chart in the background when they
# start (nelm.web.reportjob.warm_charts, tested on its own in tests/report): dozens of starts
# would each load the report's libraries in a worker of their own.
os.environ.setdefault("NELM_WARM_CHARTS", "0")


@pytest.fixture
def assess_with():
    """assess_with(**changes) -> (assessment, {option id: option}) for BASE with changes."""
    def run(guideline=None, **changes):
        a = assess(make_patient(**changes), guideline)
        return a, {o["id"]: o for o in a["options"]}
    return run


@pytest.fixture(autouse=True)
def _private_anchors(tmp_path_factory, monkeypatch):
    """The case store's anchor key and anchors file (issue 24 item 5) in a folder of the
    test's own, never the user's config directory; `nelm` subprocesses inherit it."""
    folder = tmp_path_factory.mktemp("anchors")
    monkeypatch.setenv("NELM_ANCHOR_KEY", str(folder / "anchor-key.pem"))
    monkeypatch.setenv("NELM_ANCHORS", str(folder / "anchors.jsonl"))
