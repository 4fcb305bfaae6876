"""Speed of Grad-CAM against one plain forward pass, measured in the same run (a benchmark, not a test).

ResNet-50 (random weights: the speed does not depend on them), a batch of 8 images at 224 px on the CPU.
Timed: a forward pass under no_grad (the reference), helpers.cam.grad_cam, Captum's LayerGradCam plus
upsampling, and the grad-cam package's GradCAM. Each is run after a warm-up, `REPEATS` times in turns;
the median time of each is printed with its ratio to the forward pass. Other processes sharing the CPU
make single runs noisy: the medians of interleaved repeats are what to read.

Usage: `.venv/bin/python benchmarks/bench_gradcam.py [repeats]`.
"""
from __future__ import annotations

import statistics
import sys
import time
import warnings

import torch

import helpers
from helpers import cam

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
BATCH, SIZE = 8, 224


def main() -> None:
    from captum.attr import LayerAttribution, LayerGradCam
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    model = helpers.load_model("resnet50", pretrained=False, device="cpu")
    layer = helpers.default_target_layer(model)
    x = torch.rand(BATCH, 3, SIZE, SIZE)
    target = torch.arange(BATCH) * 100
    captum_cam = LayerGradCam(model, layer)
    package_cam = GradCAM(model=model, target_layers=[layer])
    package_targets = [ClassifierOutputTarget(int(t)) for t in target]

    def forward():
        with torch.no_grad():
            model(x)

    def helpers_grad_cam():
        cam.grad_cam(model, x, target)

    def captum():
        attr = captum_cam.attribute(x, target=target, relu_attributions=True)
        LayerAttribution.interpolate(attr, (SIZE, SIZE), "bilinear")

    def package():
        # the weights are frozen, so the package needs the input to require grad to get any gradient
        package_cam(input_tensor=x.clone().requires_grad_(True), targets=package_targets)

    runs = {"forward (no_grad)": forward, "helpers.cam.grad_cam": helpers_grad_cam,
            "Captum LayerGradCam + upsample": captum, "pytorch_grad_cam GradCAM": package}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for f in runs.values():  # warm-up
        f()
    for _ in range(REPEATS):
        for name, f in runs.items():  # interleaved, so that load changes hit every method alike
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    package_cam.activations_and_grads.release()

    ref = statistics.median(times["forward (no_grad)"])
    print(f"ResNet-50, batch {BATCH} x 3 x {SIZE} x {SIZE}, CPU, {torch.get_num_threads()} threads, "
          f"median of {REPEATS} interleaved repeats after a warm-up")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:>32}: {med * 1000:8.1f} ms  {med / ref:5.2f}x forward  "
              f"(min {min(ts) * 1000:.1f}, max {max(ts) * 1000:.1f} ms)")
    ours = statistics.median(times["helpers.cam.grad_cam"])
    capt = statistics.median(times["Captum LayerGradCam + upsample"])
    print(f"helpers/forward = {ours / ref:.2f} (target <= 1.1), helpers/Captum = {ours / capt:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
