"""Lecture mode's script: the lecture's steps in its order, each with a "predict, then reveal"
question where one fits, answered from a shipped run's real numbers (never a fixed text)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cae.explain import conv_output_size
from cae.figures import relative_change
from cae.latent import TEST_SUBSET
from cae.report import standard_error, test_images


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    body: str
    live_page: str  # the app page that shows this step live
    question: str = ""
    choices: tuple[str, ...] = field(default_factory=tuple)


STEPS = (
    Step("why", "Labels are scarce, images are plenty",
         "Labelling images costs people's time; unlabelled images cost nothing. An **autoencoder** learns from images "
         "alone: it squeezes each picture into a short **code** and rebuilds the picture from it. If the code keeps "
         "what matters, a classifier can start from it and needs fewer labels.", "app_pages/data.py"),
    Step("architecture", "The network: an hourglass",
         "Four convolutions shrink a 32×32 colour image to 128 maps of 4×4, a linear layer makes the code "
         "(1,024 numbers), and the decoder mirrors it back up to 32×32. Output size of a convolution: "
         "⌊(W − K + 2P) / S⌋ + 1.", "app_pages/overview.py",
         "The first convolution: 32×32 in, kernel 3, stride 2, padding 1. What size comes out?",
         ("14×14 (as the lecture said)", "15×15", "16×16")),
    Step("autoencoder", "Training the autoencoder",
         "Mean squared error between each image and its reconstruction, Adam, batches of 2,000, no labels. "
         "The loss falls fast in the first epochs.", "app_pages/train.py",
         "After the lecture's 5 epochs, what do the reconstructions look like?",
         ("nearly perfect", "recognisable but blurry", "unrecognisable")),
    Step("kernels", "The first-layer kernels, before and after",
         "The 64 kernels of the first convolution (3×3, RGB) are what the lecture shows as learned features: "
         "random at the start, then after training.", "app_pages/kernels.py",
         "After 5 autoencoder epochs, will the kernels look very different from their random start?",
         ("very different", "almost the same")),
    Step("finetune", "Fine-tuning, and the scratch baseline",
         "The encoder gets a new linear head and is trained with labels (cross-entropy). The fair comparison is "
         "the same classifier from random weights, trained the same way.", "app_pages/classifier.py",
         "After 5 fine-tuning epochs, which start is ahead on the test images?",
         ("the autoencoder's encoder", "random weights", "within noise")),
    Step("classes", "Which classes are hard?",
         "Test accuracy per class shows where the classifier fails.", "app_pages/classifier.py",
         "Which class will the fine-tuned classifier get right least often?"),
    Step("code", "What did the code learn?",
         "If images of one class get similar codes, the 10 most similar codes of a test image mostly share its "
         "class: k-nearest-neighbour accuracy measures that, with no training at all.", "app_pages/latent.py",
         "After 5 epochs, is the code a better neighbourhood than the raw pixels?",
         ("better than pixels", "about the same or worse")),
)


def first_layer_size() -> int:
    return conv_output_size(32, 3, 1, 2)


def answer(step: Step, metrics: dict, kernels: dict | None = None, representation: dict | None = None) -> tuple[str, str]:
    """(the right choice, one sentence why) for a step's question, from a run's numbers."""
    if step.key == "architecture":
        side = first_layer_size()
        return f"{side}×{side}", f"⌊(32 − 3 + 2·1) / 2⌋ + 1 = ⌊15.5⌋ + 1 = {side}: the lecture's 14 is a slip."
    if step.key == "autoencoder":
        mse = metrics["autoencoder"][-1]["test_mse"]
        rms = mse ** 0.5
        choice = ("nearly perfect" if rms < 0.05 else "recognisable but blurry" if rms < 0.25 else "unrecognisable")
        return choice, (f"Test MSE {mse:.4f}: pixels are off by about {rms:.2f} of the full range on average "
                        f"({rms * 255:.0f} of 255 levels).")
    if step.key == "kernels":
        moved = relative_change(kernels["initial"], kernels["autoencoder"])
        return ("almost the same" if moved < 0.3 else "very different"), (
            f"They moved {moved:.0%} of their size (‖after − before‖ / ‖before‖).")
    if step.key == "finetune":
        pre, scratch = metrics["classifier"][-1]["test_acc"], metrics["scratch"]["classifier"][-1]["test_acc"]
        noise = 2 * standard_error((pre + scratch) / 2, test_images(metrics) or 10_000)
        choice = ("within noise" if abs(pre - scratch) < noise else
                  "the autoencoder's encoder" if pre > scratch else "random weights")
        return choice, f"{pre:.1f}% fine-tuned vs {scratch:.1f}% from scratch (two standard errors: ±{noise:.1f} points)."
    if step.key == "classes":
        per_class = metrics["per_class_acc"]
        worst = min(per_class, key=per_class.get)
        best = max(per_class, key=per_class.get)
        return worst, f"{worst}: {per_class[worst]:.1f}%; the best is {best} at {per_class[best]:.1f}%."
    if step.key == "code" and representation:
        code, pixels = representation["knn"], representation["pixels_knn"]
        noise = 2 * standard_error((code + pixels) / 2, representation["test_size"])
        better = code - pixels > noise
        return ("better than pixels" if better else "about the same or worse"), (
            f"k-NN accuracy {code:.1f}% for the code vs {pixels:.1f}% for raw pixels (two standard errors: "
            f"±{noise:.1f} points): " + ("the code already groups images by class better than their pixels do."
                                        if better else "the code rebuilds images well, yet it does not group them "
                                                       "by class better than their pixels do."))
    return "", ""


def code_numbers(metrics: dict, sweep_rows: list[dict]) -> dict | None:
    """The code's final k-NN accuracy beside the raw pixels', {"knn", "pixels_knn", "test_size"}: from
    the run's own curve when it recorded one, else from the shipped sweep's run with its settings."""
    rows, representation = metrics.get("autoencoder") or [], metrics.get("representation")
    if representation and rows and "knn_acc" in rows[-1]:
        return {"knn": rows[-1]["knn_acc"], "pixels_knn": representation["pixels_knn"],
                "test_size": representation["test_size"]}
    config = metrics.get("config") or {}
    match = next((r for r in sweep_rows if (r["latent_dim"], r["leak"], r["seed"], r["ae_epochs"]) ==
                  (config.get("latent_dim"), config.get("leak"), config.get("seed"), config.get("ae_epochs"))), None)
    if match is None:
        return None
    return {"knn": match["knn_curve"][-1], "pixels_knn": match["pixels_knn"], "test_size": TEST_SUBSET}
