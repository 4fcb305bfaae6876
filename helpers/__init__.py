"""Helpers for the hands-on CNN interpretability course: the plumbing, so that notebooks show the methods.

Notebooks start with `course = helpers.setup()`, which prints the device, versions and profile in one
line. The lessons' modules are flat, one concern per module; plumbing that no lesson teaches is grouped in
two subpackages at the end:

- `config`: profiles (`full` / `offline` / `smoke`), paths, seeding, the one-line environment report.
- `settings`: every number that differs between the profiles, one group per lesson (`SETTINGS`).
- `claims`: claim cells: a "what to look for" checked on the run's numbers (`COURSE_CLAIMS=strict` raises).
- `device`: the device, picked once per process (CUDA, then Apple MPS, then the CPU).
- `colab`: the repository's address and the setup cell every notebook starts with (Colab installs).
- `contract`: the model contract (`CourseModel`) and what a target is: the bottom of the package.
- `filters`: the course's one Gaussian blur.
- `registry`: the table of models (weights' address, checksum, size, licence, normalization, layers) and their
  weight files.
- `models`: ImageNet classifiers by name (`load_model`), their labels and top-k predictions.
- `layers`: layers by dotted name (and which to offer as target layers); `capture`, a layer's output during
  a forward pass (the one place that registers hooks).
- `images`: loading photos (path, URL, sample name), preprocessing to tensors and back.
- `checks`: the checks and conversions every public function applies to its inputs.
- `viz`: plotting maps over photos and grids of panels, with one colormap convention.
- `saliency`: gradient maps: the gradient, gradient x input, SmoothGrad, Integrated Gradients, guided backprop.
- `cam`: class activation maps from gradients: Grad-CAM and Grad-CAM++.
- `blackbox`: explanations by perturbation: LIME and SHAP.
- `optimize`: optimizing an image: parameterizations, transformations, class models, feature visualization.
- `attacks`: adversarial images in pixel space (fooling images).
- `features`: features at named layers (VGG's paper names or dotted names), content and style layers.
- `style`: neural style transfer: Gram matrices, losses, the optimization.
- `metrics`: scores for explanations: localization, faithfulness, randomization.
- `imputation`: filling removed pixels from their neighbours (ROAD's noisy linear imputation).
- `sanity`: the cascading model-parameter randomization sanity check.
- `stats`: confidence intervals for the case study's scores.
- `verdicts`: the case study's answers, given only when their controls passed (else "cannot tell").
- `concepts`: concept-level evidence: TCAV (Captum) with random concepts and its significance test.
- `synthetic`: a generated image set with known ground truth, a small CNN and its training loop.
- `heads`: a new classification head, and the split into a frozen prefix and a trained last block.
- `train`: fine-tuning a course classifier on the case study's data sets.
- `data/` (subpackage): the case study's data sets and every download: `download`, `assets` (the table of
  downloads), `prefetch` (`make assets`), `files`, `oxford_pets`, `celeba`, `faceparts`, `lookalike`, `datasets`.
- `explorer/` (subpackage): the interactive explorer of notebook 08: `state`, `methods`, `view`, `ui`.
"""
from .claims import claim

COURSE_PACKAGE = True  # the notebooks' setup cell checks this marker: `import helpers` found the course's package
from .config import data_dir, get_profile, seed_everything, set_profile, setup
from .settings import SETTINGS
from .device import get_device
from .images import SAMPLES, load_batch, load_image, preprocess, to_numpy
from .layers import default_target_layer, get_layer, layer_names, stage_names
from .models import Classifier, imagenet_labels, load_model, top_k
from .registry import MODELS, WeightsError, has_pretrained_weights
from .viz import normalize_map, overlay, show_grid, show_maps

__all__ = [
    "claim", "SETTINGS", "data_dir", "get_profile", "seed_everything", "set_profile", "setup", "get_device",
    "SAMPLES", "load_batch", "load_image", "preprocess", "to_numpy",
    "MODELS", "Classifier", "WeightsError", "stage_names", "has_pretrained_weights", "default_target_layer", "get_layer", "imagenet_labels", "layer_names",
    "load_model", "top_k", "normalize_map", "overlay", "show_grid", "show_maps",
]
