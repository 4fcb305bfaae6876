"""Helpers for the hands-on CNN interpretability course: set-up, models, images, downloads, plotting.

Notebooks start with `course = helpers.setup()`, which prints the device, versions and profile in one
line. One module per concern: `config` (profiles, paths, seeds), `device`, `models`, `images`,
`download`, `viz`, `colab`.
"""
from .config import SETTINGS, data_dir, get_profile, seed_everything, set_profile, setup
from .device import get_device
from .images import SAMPLES, load_batch, load_image, preprocess, to_numpy
from .models import (MODELS, Classifier, WeightsError, default_target_layer, get_layer, has_pretrained_weights,
                     imagenet_labels, layer_names, load_model, stage_names, top_k)
from .viz import normalize_map, overlay, show_grid, show_maps

__all__ = [
    "SETTINGS", "data_dir", "get_profile", "seed_everything", "set_profile", "setup", "get_device",
    "SAMPLES", "load_batch", "load_image", "preprocess", "to_numpy",
    "MODELS", "Classifier", "WeightsError", "stage_names", "has_pretrained_weights", "default_target_layer", "get_layer", "imagenet_labels", "layer_names",
    "load_model", "top_k", "normalize_map", "overlay", "show_grid", "show_maps",
]
