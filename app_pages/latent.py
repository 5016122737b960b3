"""Latent space: what the code learned, measured. A map of the test images' codes with neighbours,
how good the code is as a representation (k-NN, linear probe, the curve per epoch), a walk between
two images, the limits of an autoencoder, and the shipped latent-size and leak sweeps."""

import streamlit as st
import torch

from app_pages import state
from app_pages._shared import (
    click_chart_key,
    clicked_point,
    current_dataset,
    current_run,
    same_dataset,
    show_chart,
    show_run_summary,
    typed_instead_of_clicked,
)
from app_pages.caches import TaskError, computed, jobs, runs
from cae import latent
from cae.budget import finished_sweeps
from cae.budget_figures import objectives_chart
from cae.budget_report import confirmation_sentence, contrast_sentence, objectives_sentence
from cae.contrastive import NO_RECONSTRUCTIONS, rebuilds
from cae.explain import reconstruct
from cae.figures import (
    activity_chart,
    image_strip,
    latent_map,
    latent_size_chart,
    leak_chart,
    picture,
    representation_curves,
)
from cae.report import dead_units_sentence, latent_size_sentence, representation_sentence, sweep_sentence
from cae.sweeps import (
    OBJECTIVE_NAMES,
    fits_sweep,
    grouped,
    load_label_budget,
    load_objectives,
    load_sweeps,
    objective_pictures,
    trained_as_long,
    user_point,
)
from cae.uploads import ImageInputError, image_from_bytes
from cae.words import run_title, with_article

FEATURE_NAMES = {
    "pixels": "raw pixels",
    "initial": "the initial (random) encoder's code",
    "code": "this run's code",
    "finetuned": "the fine-tuned classifier's features",
}


def worker_result(kind: str, payload: dict, doing: str):
    """A task's result from the training worker, with a spinner saying what it computes; None
    (with the reason shown) when it failed or is still running after 10 minutes."""
    with st.spinner(f"{doing} (in the training worker; kept for the next view)…"):
        try:
            result = computed(kind, payload, wait=600)
        except TaskError as exc:
            st.error(f"That computation failed: {exc}")
            return None
    if result is None:
        st.warning("Still computing (the worker is busy); open this page again in a minute.")
    return result


def on_map(number: int, index: list[int]) -> int:
    """The map position of a test image number, or of the nearest number that is on the map."""
    return min(range(len(index)), key=lambda i: abs(index[i] - number))


def uploaded_picture() -> tuple[torch.Tensor | None, str]:
    """The learner's own picture: uploaded here, or the last one tried on the Try page."""
    upload = st.file_uploader(
        "A PNG or JPEG (the Try page's last picture is used too); it is encoded and "
        "placed with the same projection, marked ✕",
        type=["png", "jpg", "jpeg"],
        key="latent_upload",
    )
    if upload is not None:
        state.set_uploaded_picture(upload.getvalue())
    data = state.uploaded_picture()
    if data is None:
        return None, ""
    try:
        return image_from_bytes(data)[0], "your picture"
    except ImageInputError as exc:
        st.error(str(exc))
        return None, ""


def neighbours_row(title: str, found: list[int], dataset, label: int) -> None:
    same = sum(int(dataset.train.labels[i]) == label for i in found)
    st.markdown(f"**{title}** — {same} of the {len(found)} share its class ({dataset.classes[label]})")
    names = [dataset.classes[int(dataset.train.labels[i])] for i in found]
    st.image(
        [picture(dataset.train.images[i]) for i in found],
        width=72,
        alt=[f"training image {i}, {with_article(name)}" for i, name in zip(found, names)],
        caption=[
            ("✓ " if int(dataset.train.labels[i]) == label else "") + dataset.classes[int(dataset.train.labels[i])]
            for i in found
        ],
    )


def show_map(run, dataset, view: dict) -> None:
    index, labels = view["index"].tolist(), view["labels"]
    map_key = click_chart_key("latent_map_chart")
    if (number := clicked_point(map_key)) is not None:
        state.set_widget("latent_image", number)
    state.widget_defaults(latent_image=index[0])
    state.set_widget("latent_image", min(max(int(state.widget("latent_image")), 0), len(dataset.test) - 1))
    position = on_map(state.widget("latent_image"), index)
    chart = st.container()  # the map above, the uploader below it (its picture is drawn on the map)
    with st.expander("Place your own picture on the map", expanded=state.uploaded_picture() is not None):
        picture_image, picture_name = uploaded_picture()
    extra = None
    if picture_image is not None:
        code = latent.codes(run.autoencoder, picture_image[None])
        x, y = ((code - view["mean"]) @ view["axes"])[0].tolist()
        extra = (x, y, picture_name)
    show_chart(
        chart,
        latent_map(view["xy"], labels, view["index"], dataset.classes, position, extra),
        width="stretch",
        on_select="rerun",
        selection_mode="points",
        key=map_key,
    )
    chart.caption(
        f"{len(index):,} test images, class-balanced. The two axes are the directions in which the codes "
        f"differ most (PCA): they show {view['explained']:.0%} of the codes' variance, so points close here "
        "may still be far apart in the full code. Click a point, or type its number."
    )
    left, right = st.columns([1, 3])
    number = left.number_input(
        f"Test image number (0–{len(dataset.test) - 1})",
        0,
        len(dataset.test) - 1,
        key="latent_image",
        persist_state="session",
        on_change=typed_instead_of_clicked,
        args=("latent_map_chart",),
    )
    position = on_map(int(number), index)
    if index[position] != number:
        left.caption(f"Test image {number} is not on the map; showing {index[position]}, the nearest number that is.")
    chosen, label = index[position], int(labels[position])
    image = dataset.test.images[chosen]
    if rebuilds(run.metrics["config"]):
        left.image(
            [picture(image), picture(reconstruct(run.autoencoder, image[None])[0])],
            width=96,
            alt=[
                f"test image {chosen}, {with_article(dataset.classes[label])}",
                f"the reconstruction of test image {chosen}",
            ],
            caption=[f"test image {chosen}: {dataset.classes[label]}", "its reconstruction"],
        )
    else:  # a contrastive run trained no decoder
        left.image(
            picture(image),
            width=96,
            caption=f"test image {chosen}: {dataset.classes[label]}",
            alt=f"test image {chosen}",
        )
    with right:
        neighbours_row("8 nearest training images by code", view["code_neighbours"][position].tolist(), dataset, label)
        neighbours_row("8 nearest by raw pixels", view["pixel_neighbours"][position].tolist(), dataset, label)


def knn_curve(metrics: dict, scores: dict | None) -> list[tuple[int, float]]:
    """A run's k-NN accuracy per autoencoder epoch (epoch 0: the initial encoder): from its history
    when recorded during training, else three points' worth from `scores` (initial and final code)."""
    rows = metrics.get("autoencoder") or []
    if scores is None:
        start = (metrics.get("representation") or {}).get("initial_knn")
        return ([(0, start)] if start is not None else []) + [
            (r["epoch"], r["knn_acc"]) for r in rows if "knn_acc" in r
        ]
    return [(0, scores["initial"]["knn"]), (rows[-1]["epoch"] if rows else 0, scores["code"]["knn"])]


def curve_recorded_on(metrics: dict, dataset) -> bool:
    """Whether a run recorded its k-NN curve during training, on the data in use (the autoencoder's
    training data: for a fine-tuned transfer, its source's)."""
    pretraining = metrics.get("pretraining_dataset") or metrics["dataset"]
    return "representation" in metrics and pretraining["fingerprint"] == dataset.fingerprint


def show_quality(run, dataset, payload: dict, quality: dict) -> None:
    scores = quality["scores"]
    st.dataframe(
        [
            {"features": FEATURE_NAMES[name], "k-NN accuracy": f"{s['knn']:.1f}%", "linear probe": f"{s['probe']:.1f}%"}
            for name, s in scores.items()
        ],
        hide_index=True,
        width="stretch",
    )
    st.markdown(representation_sentence(scores, quality["test_size"], len(run.metrics.get("autoencoder") or [])))
    st.caption(
        f"k-NN: each of {quality['test_size']:,} test images takes the majority class of its 10 most "
        f"similar (cosine) among {quality['train_size']:,} training images. Linear probe: one linear layer "
        f"on the standardised features, Adam (lr {latent.PROBE_LR:g}, weight decay {latent.PROBE_WEIGHT_DECAY:g}), "
        f"{latent.PROBE_STEPS} full-batch steps. Both on fixed class-balanced subsets (seed 0)."
    )
    # the curve: this run and the runs chosen for comparison, all measured on the data in use
    infos = [i for i in runs() if i.error is None and i.path != run.path and i.metrics.get("autoencoder")]
    names = {str(i.path): i.title if i.pretrained else i.name for i in infos}
    defaults = [
        str(i.path)
        for i in infos
        if i.pretrained
        and i.metrics["config"]["ae_epochs"] in (5, 30)
        and not i.metrics["config"].get("flip")
        and i.metrics["config"].get("clf_lr", 1e-3) == 1e-3
    ]
    state.widget_defaults(latent_overlay=defaults)
    state.set_widget("latent_overlay", [p for p in state.widget("latent_overlay") if p in names])
    chosen = st.multiselect(
        "Compare with", list(names), format_func=names.get, key="latent_overlay", persist_state="session"
    )
    knn = {"this run": knn_curve(run.metrics, None if curve_recorded_on(run.metrics, dataset) else scores)}
    mse = {"this run": [(r["epoch"], r["test_mse"]) for r in run.metrics["autoencoder"] if "test_mse" in r]}
    for path in chosen:
        info = next(i for i in infos if str(i.path) == path)
        if curve_recorded_on(info.metrics, dataset):
            other = None
        else:
            result = worker_result("representation", {**payload, "run": path}, f"Measuring {names[path]}")
            if result is None:
                continue
            other = result["scores"]
        knn[names[path]] = knn_curve(info.metrics, other)
        mse[names[path]] = [(r["epoch"], r["test_mse"]) for r in info.metrics["autoencoder"] if "test_mse" in r]
    show_chart(st, representation_curves(knn, mse, scores["pixels"]["knn"], len(dataset.classes)), width="stretch")
    st.caption(
        "Runs that recorded the curve during training show every epoch; older runs show the initial encoder "
        "(epoch 0) and the final code, measured now. The MSE is each run's own test MSE from training."
    )


def show_walk(run, dataset, index: list[int], labels: torch.Tensor) -> None:
    other = next((index[i] for i in range(len(index)) if labels[i] != labels[0]), index[-1])
    state.widget_defaults(walk_a=index[0], walk_b=other, walk_steps=8)
    a_col, b_col, steps_col = st.columns(3)
    top = len(dataset.test) - 1
    a = a_col.number_input(f"From test image (0–{top})", 0, top, key="walk_a", persist_state="session")
    b = b_col.number_input(f"To test image (0–{top})", 0, top, key="walk_b", persist_state="session")
    steps = steps_col.slider("Steps", 4, 12, key="walk_steps", persist_state="session")
    decoded, fade = latent.interpolate(run.autoencoder, dataset.test.images[a], dataset.test.images[b], steps)
    show_chart(
        st,
        image_strip(
            [decoded, fade], "Top: decoded codes along the line between the two codes. Bottom: the pixels cross-faded."
        ),
        width="stretch",
    )
    st.caption(
        "If the code had learned what the objects are, the top row would pass through plausible pictures; "
        "a cross-fade only makes double exposures. Compare the middle images of the two rows."
    )


def show_limits(run, dataset, view: dict) -> None:
    show_chart(
        st,
        image_strip(
            [view["random"][:8], view["random"][8:16]],
            "Random codes (with the real codes' mean and covariance), decoded",
        ),
        width="stretch",
    )
    st.caption(
        "The autoencoder learned to rebuild images from their codes, not to make new images: codes drawn "
        "at random decode to blurry colour fields, not objects. (A variational autoencoder is trained to "
        "make this work.)"
    )
    probes = latent.ood_probes(dataset.test.images[view["index"][0]])
    images = torch.stack(list(probes.values()))
    errors = latent.reconstruction_errors(run.autoencoder, images).tolist()
    typical = float(view["errors"].median())
    show_chart(
        st,
        image_strip(
            [images, reconstruct(run.autoencoder, images)],
            "Pictures unlike the training images (top) and their reconstructions",
        ),
        width="stretch",
    )
    st.dataframe(
        [
            {
                "picture": name,
                "reconstruction MSE": f"{e:.4f}",
                "vs a typical test image": f"{e / typical:.1f}×",
                "test images rebuilt worse": f"{float((view['errors'] > e).float().mean()):.0%}",
            }
            for name, e in zip(probes, errors)
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"A typical test image (the median of the {len(view['errors']):,} on the map) is rebuilt with MSE "
        f"{typical:.4f}. A high error flags a picture unlike the training data; a low one (a flat colour, a "
        "gradient) shows the code stores smooth colour well whatever the picture is."
    )


def show_sweeps(run, view: dict) -> None:
    sweeps = load_sweeps()
    st.subheader("Latent size")
    if sweeps is None:
        st.info("This copy has no sweep results (pretrained/sweeps.json); `python bench/sweeps.py` makes them.")
        return
    rows = sweeps["runs"]
    sizes = grouped(rows, "latent_dim", where={"leak": 0.1})
    fitting = [
        user_point(i.metrics)
        for i in runs()
        if i.error is None
        and i.path != run.path
        and fits_sweep(i.metrics, sweeps)
        and i.metrics["config"]["leak"] == 0.1
    ]
    marked = user_point(run.metrics) if fits_sweep(run.metrics, sweeps) else None
    show_chart(st, latent_size_chart(sizes, fitting, marked), width="stretch")
    if sentence := latent_size_sentence(sizes):
        st.markdown(sentence)
    where = (
        "is ringed on the chart"
        if marked
        else (
            "is not on the chart: it was trained with other settings or on other data than the sweep "
            f"({sweeps['dataset']['name']}, the lecture's recipe for 5 + 5 epochs)"
        )
    )
    st.caption(f"Shipped sweep: one run per latent size (three seeds at 1024), metrics only. The run viewed {where}.")

    st.subheader("Leak and dead units")
    st.markdown(
        "The encoder's activations are LeakyReLUs: below zero they pass `leak × x` instead of 0. A unit "
        "whose output is never above zero on any test image is *dead*: it says nothing about the image. "
        "With a leak of 0 (plain ReLU) a dead unit also gets no gradient and cannot recover."
    )
    activity = view["activity"]
    layers = sweeps.get("layers") or latent.ENCODER_LAYERS
    show_chart(st, activity_chart(activity, layers, latent.HISTOGRAM_RANGE), width="stretch")
    st.markdown(dead_units_sentence(activity, layers))
    leaks = grouped(rows, "leak", where={"latent_dim": 1024})
    show_chart(st, leak_chart(leaks, layers), width="stretch")
    for measure, what in (("test_acc", "Fine-tuned accuracy"), ("knn", "k-NN accuracy of the code")):
        if sentence := sweep_sentence(leaks, measure, "leak", what):
            st.markdown(sentence)
    st.caption(
        f"Shipped sweep: leak {', '.join(f'{x:g}' for x in leaks)} × 3 seeds at latent 1024, 5 + 5 epochs "
        f"on {sweeps['dataset']['name']}; dead units measured on its 1,000 fixed test images."
    )


def show_confirmations(confirmations: dict[str, dict]) -> None:
    """Each longer run of an objective, beside the shipped plain encoder trained as long."""
    sweep = load_label_budget()
    for name, entry in confirmations.items():
        if (base := trained_as_long(entry, sweep)) is None:
            continue
        title, lines = base
        if said := confirmation_sentence(OBJECTIVE_NAMES.get(name, name), entry, lines, f"the plain {title}"):
            st.markdown(said)


def epochs_per_objective(options: dict[str, dict]) -> str:
    """ "8 pretraining epochs per objective", or with several counts, which took how many."""
    counts = {e["ae_epochs"] for e in options.values()}
    if len(counts) == 1:
        return f"{counts.pop()} pretraining epochs per objective"
    return "pretraining epochs: " + ", ".join(
        f"{OBJECTIVE_NAMES.get(n, n)} {e['ae_epochs']}" for n, e in options.items()
    )


def show_objectives() -> None:
    """The shipped comparison of what the autoencoder rebuilds (bench/objectives.py), or what is missing."""
    shipped = load_objectives()
    if not shipped or not shipped.get("options"):
        st.info(
            "This copy has no comparison of pretraining objectives yet (pretrained/objectives.json); "
            '`python bench/objectives.py` makes it. The Train page trains any of them: "What pretraining asks".'
        )
        return
    options = shipped["options"]
    st.markdown(
        "Rebuilding its own input can be done by copying pixels. Denoising, masking and random crops ask the "
        "autoencoder to rebuild the clean image from a damaged or shifted one, so its code must keep what the "
        "picture shows. The contrastive objective rebuilds nothing: two random views of each image must get "
        "matching codes, unlike the other images'. The same encoder and the same label-budget protocol:"
    )
    st.markdown(objectives_sentence(options, OBJECTIVE_NAMES))
    if said := contrast_sentence(options, lambda n: OBJECTIVE_NAMES.get(n, n)):
        st.markdown(said)
    knn = {OBJECTIVE_NAMES.get(n, n): list(enumerate(e["knn_curve"], start=1)) for n, e in options.items()}
    mse = {
        OBJECTIVE_NAMES.get(n, n): list(enumerate(e["test_mse"], start=1)) for n, e in options.items() if e["test_mse"]
    }
    pixels = next(iter(options.values())).get("pixels_knn")
    show_chart(st, representation_curves(knn, mse, pixels, len(shipped["dataset"]["classes"])), width="stretch")
    fingerprint = shipped["dataset"].get("fingerprint")
    sources = [(i.name, f"yours: {run_title(i.metrics)}") for i in runs() if i.metrics]
    yours = finished_sweeps(jobs().runs_dir, sources, fingerprint) if fingerprint else {}
    lines = {**options, **{title: {"points": points} for title, points in yours.items()}}
    show_chart(st, objectives_chart(lines, OBJECTIVE_NAMES), width="stretch")
    st.caption(
        f"Drawn beside the shipped lines: {len(yours)} label-budget sweep{'s' if len(yours) != 1 else ''} of your own "
        "on the same images."
        if yours
        else 'Your own lines join these: train an objective on the Train page ("What pretraining asks"), '
        f"then run its label-budget sweep on the Classifier page with {shipped['dataset']['name']} as the data."
    )
    show_confirmations(shipped.get("confirmation") or {})
    pictures = objective_pictures() or {}
    shown = [n for n in options if n in pictures]
    if shown:
        name = st.selectbox(
            "What each objective trains on",
            shown,
            format_func=lambda n: OBJECTIVE_NAMES.get(n, n),
            key="objective_pictures",
        )
        rows = [torch.from_numpy(row) for row in pictures[name]]
        what = (
            "test images, the input it trains on, and its reconstruction of each"
            if len(rows) == 4
            else "test images and two random views of each, which must get matching codes (nothing is rebuilt)"
        )
        show_chart(st, image_strip(rows, f"{OBJECTIVE_NAMES.get(name, name)}: {what}"), width="stretch")
    st.caption(
        f"Shipped comparison on {shipped['dataset']['name']}: {epochs_per_objective(options)}, then "
        f"{shipped['protocol']}"
    )


st.title("Latent space: what the code learned")
run = current_run()
if run is None:
    st.stop()
show_run_summary(run)
dataset = current_dataset()
if dataset is None:
    st.stop()
if not same_dataset(run, dataset):
    st.info(
        f"This run was trained on {run.metrics['dataset']['name']}; everything below is measured on the data "
        f"in use, {dataset.name}."
    )
st.markdown(
    f"The encoder turns each image (3 × 32 × 32 = 3,072 numbers) into a **code** of "
    f"{run.config.latent_dim:,} numbers, and the decoder rebuilds the image from it. Training never saw a "
    "label, so if pictures of one class end up with similar codes, the code has found some of what the "
    "labels mean. This page looks at the codes and measures that."
)
payload = {"run": str(run.path), "origin": dataset.origin, "fingerprint": dataset.fingerprint}

st.header("Map")
view = worker_result("latent_map", payload, f"Encoding {dataset.name}'s images and finding neighbours")
if view is not None:
    show_map(run, dataset, view)

st.header("How good is the code?")
quality = worker_result("representation", payload, "Measuring k-NN and linear-probe accuracy of four kinds of features")
if quality is not None:
    show_quality(run, dataset, payload, quality)

st.header("Walk between two images")
if not rebuilds(run.metrics["config"]):
    st.info(NO_RECONSTRUCTIONS)
elif view is not None:
    show_walk(run, dataset, view["index"].tolist(), view["labels"])

st.header("Limits of an autoencoder")
if not rebuilds(run.metrics["config"]):
    st.info(NO_RECONSTRUCTIONS)
elif view is not None:
    show_limits(run, dataset, view)

st.header("Latent size and leak")
if view is not None:
    show_sweeps(run, view)

st.header("What makes the code useful?")
show_objectives()
