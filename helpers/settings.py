"""Every number that differs between the profiles (`full` / `offline` / `smoke`), and the course model, in one
table: `SETTINGS[profile]`, a `Settings` with course-wide fields and one group per lesson. Notebooks read
them as `cfg.image_size`, `cfg.visualization.steps`, `cfg.case.train_images`, ...; `changed` makes a copy with
some changed (the dry run of notebook 06 uses it). The profile in force is chosen in `helpers.config`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Saliency:
    """01 saliency maps."""

    smoothgrad_samples: int
    ig_steps: int


@dataclass(frozen=True)
class Visualization:
    """03 class model visualization."""

    size: int  # side of the optimized images, pixels
    steps: int


@dataclass(frozen=True)
class Attacks:
    """04 fooling images."""

    steps: int
    batch: int  # distinct images for the success rates (each also as a mirrored close-up: 2 views)
    pgd_steps: int
    step: float  # L2 length of one fooling step, [0, 1] pixel units


@dataclass(frozen=True)
class Style:
    """05 style transfer."""

    size: int
    steps: int
    grid_size: int  # side of the images in the parameter-experiment grids, pixels
    grid_steps: int  # optimizer evaluations per image in those grids


@dataclass(frozen=True)
class CaseStudy:
    """06 case study."""

    train_images: int
    test_images: int
    epochs: int
    image_size: int  # side of the case study's model input, pixels
    val_images: int  # validation images per epoch (per data set)
    head_epochs: int  # epochs training only the new head, before `epochs` with the last block
    batch: int  # training batch size
    explain_images: int  # images per data set explained with LIME and SHAP too (they are slow)
    positives: int  # test faces per attribute, positive for it, added to the Grad-CAM pool
    split_images: int  # test faces per cell of a correlated-attribute split (group x label)
    second_images: int  # Grad-CAM test images per set for the second model (VGG19, `full` only)
    # training images per set for the second model (VGG19, `full` only): a subset of the first model's (VGG19
    # needs about 11 times ResNet-18's arithmetic per image, so it trains on fewer)
    second_train_images: int
    # the ImageNet models fine-tuned: ResNet-18 and VGG19 in `full` (the case study's own models, downloaded),
    # the course model elsewhere
    models: tuple[str, ...]
    tcav_images: int  # images per TCAV concept set (concepts and random sets)
    tcav_randoms: int  # random concept sets for TCAV's significance test
    tcav_inputs: int  # inputs per explained output for TCAV


@dataclass(frozen=True)
class Evaluation:
    """07 evaluating explanations."""

    synth_images: int  # training images of the generated shape set
    synth_size: int  # their side, pixels
    synth_epochs: int
    curve_steps: int  # steps of the deletion / insertion curves
    synth_strengths: tuple[float, ...]  # shortcut strengths of the controlled experiment
    synth_explain: int  # images explained per model (LIME and SHAP dominate the cost)


@dataclass(frozen=True)
class Settings:
    """Every number that differs between the profiles, and the course model: course-wide fields, then one
    group per lesson (`cfg.saliency`, `cfg.visualization`, `cfg.attacks`, `cfg.style`, `cfg.case`,
    `cfg.evaluation`)."""

    name: str
    model: str  # the course model: the pretrained ImageNet classifier every lesson uses (`load_model(cfg.model)`)
    image_size: int  # side of the square model input, pixels
    batch_size: int  # images per forward pass in notebooks
    lime_samples: int  # LIME's perturbed samples per image (06, 07, 08)
    shap_evals: int  # SHAP's model evaluations per image (06, 07, 08)
    saliency: Saliency
    visualization: Visualization
    attacks: Attacks
    style: Style
    case: CaseStudy
    evaluation: Evaluation
    extra: dict[str, Any] = field(default_factory=dict)


def changed(settings: Settings, **changes: Any) -> Settings:
    """A copy of `settings` with fields changed by name; a lesson's field as "group.field", e.g.
    `changed(cfg, **{"case.train_images": 40})`. ValueError naming an unknown field."""
    top: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        group, _, name = key.rpartition(".")
        owner = getattr(settings, group, None) if group else settings
        if owner is None or name not in {f.name for f in fields(owner)}:
            raise ValueError(f"unknown setting {key!r}; settings are {', '.join(setting_names(settings))}.")
        (groups.setdefault(group, {}) if group else top)[name] = value
    for group, values in groups.items():
        top[group] = replace(getattr(settings, group), **values)
    return replace(settings, **top)


def setting_names(settings: Settings) -> list[str]:
    """Every setting's name as `changed` takes it: course-wide fields, then "group.field"."""
    names = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        names += [f"{f.name}.{g.name}" for g in fields(value)] if is_dataclass(value) else [f.name]
    return names


SETTINGS: dict[str, Settings] = {
    "offline": Settings(
        name="offline", model="efficientnet_lite0", image_size=224, batch_size=16, lime_samples=300, shap_evals=300,
        saliency=Saliency(smoothgrad_samples=32, ig_steps=256),
        visualization=Visualization(size=160, steps=96),
        attacks=Attacks(steps=100, batch=14, pgd_steps=10, step=0.25),
        style=Style(size=224, steps=100, grid_size=128, grid_steps=100),
        case=CaseStudy(train_images=512, test_images=256, epochs=4, image_size=160, val_images=64, head_epochs=2,
                       batch=16, explain_images=8, positives=40, split_images=40, second_images=256,
                       second_train_images=512, models=("efficientnet_lite0",), tcav_images=40, tcav_randoms=8,
                       tcav_inputs=40),
        evaluation=Evaluation(synth_images=2000, synth_size=48, synth_epochs=5, curve_steps=16,
                              synth_strengths=(0.0, 0.5, 0.8, 1.0), synth_explain=8),
    ),
    "smoke": Settings(
        name="smoke", model="efficientnet_lite0", image_size=96, batch_size=4, lime_samples=24, shap_evals=24,
        saliency=Saliency(smoothgrad_samples=4, ig_steps=256),
        visualization=Visualization(size=64, steps=3),
        attacks=Attacks(steps=30, batch=4, pgd_steps=2, step=1.0),
        style=Style(size=64, steps=4, grid_size=32, grid_steps=3),
        case=CaseStudy(train_images=16, test_images=12, epochs=1, image_size=96, val_images=4, head_epochs=1,
                       batch=8, explain_images=2, positives=3, split_images=3, second_images=8,
                       second_train_images=16, models=("efficientnet_lite0",), tcav_images=6, tcav_randoms=3,
                       tcav_inputs=4),
        evaluation=Evaluation(synth_images=400, synth_size=32, synth_epochs=2, curve_steps=8,
                              synth_strengths=(0.0, 1.0), synth_explain=3),
    ),
}
# `full` runs every lesson exactly as `offline` does (the same course model, sizes and counts, so that the text,
# written from `offline` runs, describes it too) and adds what needs a download: the case study's real data
# sets, fine-tuning ResNet-18 and VGG19 at their own sizes, and VGG19 for the classic style transfer.
SETTINGS["full"] = changed(
    SETTINGS["offline"], name="full", lime_samples=1000, shap_evals=1000,
    **{"style.size": 256, "style.grid_size": 128, "style.grid_steps": 60,
       "case.train_images": 2000, "case.test_images": 500, "case.epochs": 3, "case.image_size": 224,
       "case.val_images": 300, "case.head_epochs": 2, "case.batch": 32, "case.explain_images": 6,
       "case.positives": 60, "case.split_images": 100, "case.second_images": 200,
       "case.second_train_images": 600, "case.models": ("resnet18", "vgg19")},
)
SETTINGS = {name: SETTINGS[name] for name in ("full", "offline", "smoke")}
