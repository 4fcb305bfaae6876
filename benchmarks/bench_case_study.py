"""Speed of the case study's explanations (notebook 06) for one 224 px image on ResNet-18 on the CPU
(random weights: speed does not depend on them).

Prints the seconds for Grad-CAM, LIME at 1000 samples and Partition SHAP at the `full` profile's budget
(`shap_evals`), each calling the model on batches of 128 images, and, as the reference measured in the
same run, LIME with the library's default of 10 images per model call (on fewer samples, scaled). SHAP's
one-off numba compilation is timed separately. Notebook 06 runs Grad-CAM on hundreds of test images in
batches, so the script also prints Grad-CAM's seconds per image in a batch of 32 (the cost that decides
how many images the notebook can score), and the seconds of one bootstrap interval of a paired
difference over 500 images (`helpers.stats`, 4999 resamples, BCa). Run: `COURSE_PROFILE=smoke .venv/bin/python
benchmarks/bench_case_study.py`.
"""
from __future__ import annotations

import statistics
import time

import torch

import helpers
import numpy as np

from helpers import blackbox, heads, stats
from helpers.cam import grad_cam
from helpers.settings import SETTINGS

SIZE = 224
LIME_SAMPLES = 1000
REF_SAMPLES = 200  # LIME with batch_size=10 is measured on this many samples and scaled to LIME_SAMPLES
BATCH = 128


def seconds(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    helpers.seed_everything()
    model = heads.new_head(helpers.load_model("resnet18", pretrained=False, device="cpu"), ["cat", "dog"], False)
    x = helpers.load_batch(["cat"], SIZE)
    shap_evals = SETTINGS["full"].shap_evals
    print(f"one {SIZE} px image, ResNet-18 (random weights), CPU, torch threads: {torch.get_num_threads()}")
    t_cam = seconds(lambda: grad_cam(model, x, 0), repeat=5)
    xb = x.expand(32, -1, -1, -1).contiguous()
    t_cam_batch = seconds(lambda: grad_cam(model, xb, 0), repeat=3) / len(xb)
    rng = np.random.default_rng(0)
    a, b = rng.random(500), rng.random(500)
    t_boot = seconds(lambda: stats.paired_difference(a, b), repeat=3)
    t_jit = seconds(lambda: blackbox.shap_maps(model, x[:, :, :32, :32], 0, max_evals=16, batch_size=BATCH))
    t_lime = seconds(lambda: blackbox.lime_maps(model, x, 0, num_samples=LIME_SAMPLES, batch_size=BATCH))
    t_shap = seconds(lambda: blackbox.shap_maps(model, x, 0, max_evals=shap_evals, batch_size=BATCH))
    t_ref = seconds(lambda: blackbox.lime_maps(model, x, 0, num_samples=REF_SAMPLES, batch_size=10))
    t_ref_batched = seconds(lambda: blackbox.lime_maps(model, x, 0, num_samples=REF_SAMPLES, batch_size=BATCH))
    print(f"Grad-CAM                          : {t_cam:8.3f} s")
    print(f"Grad-CAM, per image in a batch of 32: {t_cam_batch:8.3f} s")
    print(f"bootstrap interval, paired, 500 images: {t_boot:8.3f} s")
    print(f"LIME, {LIME_SAMPLES} samples, batch {BATCH}      : {t_lime:8.2f} s  ({t_lime / t_cam:.0f} x Grad-CAM)")
    print(f"SHAP Partition, {shap_evals} evals, batch {BATCH}: {t_shap:8.2f} s  ({t_shap / t_cam:.0f} x Grad-CAM)")
    print(f"SHAP first-call compilation (once) : {t_jit:8.2f} s")
    print(f"reference, LIME batch 10 vs {BATCH} ({REF_SAMPLES} samples): {t_ref:.2f} s vs {t_ref_batched:.2f} s, "
          f"speed-up {t_ref / t_ref_batched:.2f} x")


if __name__ == "__main__":
    main()
