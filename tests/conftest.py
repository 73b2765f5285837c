import pytest

from nelm.assessment import assess
from nelm.testing import make_patient


@pytest.fixture
def assess_with():
    """assess_with(**changes) -> (assessment, {option id: option}) for BASE with changes."""
    def run(guideline=None, **changes):
        a = assess(make_patient(**changes), guideline)
        return a, {o["id"]: o for o in a["options"]}
    return run
