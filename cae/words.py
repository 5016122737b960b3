"""A run in words: its title (what differs from the lecture's settings), its one-line summary,
an epoch's line, durations, and user text shown safely in Markdown. The comparisons' sentences are
in cae/report.py."""

from __future__ import annotations


def code_span(text: str) -> str:
    """User text (a file or folder name) inside Markdown, shown as typed and never as markup: in an
    inline code span no link, emphasis, HTML or autolinked address forms (a backtick becomes ')."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def duration(seconds: float) -> str:
    """ "3m 56s"; "…" while not known (NaN)."""
    if seconds != seconds:
        return "…"
    return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"


PHASE_NAMES = {"autoencoder": "Autoencoder", "classifier": "Fine-tuning", "scratch": "Scratch"}


def epoch_sentence(phase: str, row: dict) -> str:
    """ "Autoencoder epoch 3: train MSE 0.0312, test MSE 0.0301 (5.2 s)" and the like."""
    if "train_mse" in row or "test_acc" not in row:
        numbers = (
            f"train MSE {row['train_mse']:.4f}, test MSE {row['test_mse']:.4f}"
            if "train_mse" in row
            else f"contrastive loss (NT-Xent) {row['train_loss']:.3f}"
        )
        if "knn_acc" in row:
            numbers += f", k-NN accuracy of the code {row['knn_acc']:.1f}%"
    else:
        numbers = f"training loss {row['train_loss']:.3f}, test accuracy {row['test_acc']:.1f}%"
    return f"{PHASE_NAMES.get(phase, phase)} epoch {row['epoch']}: {numbers} ({row['seconds']:.1f} s)"


def test_images(metrics: dict) -> int | None:
    """How many test images a run's accuracies rest on (its test subset, else the whole split)."""
    size = (metrics.get("dataset") or {}).get("test_size")
    limit = (metrics.get("config") or {}).get("test_limit")
    return min(size, limit) if size and limit else size


def _fmt(value: float) -> str:
    return f"{value:g}"


def _epochs(cfg: dict, metrics: dict) -> str:
    return f"{cfg.get('ae_epochs', 5)} + {cfg.get('clf_epochs', 5)} epochs"


def _pretrained_on(cfg: dict, metrics: dict) -> str:
    return (
        f"encoder pretrained on {(metrics.get('pretraining_dataset') or {}).get('name', 'other data').split(' (')[0]}"
    )


def _subset(cfg: dict, metrics: dict) -> str | None:
    size = (metrics.get("dataset") or {}).get("train_size")  # a limit the data does not reach: no subset
    return f"{cfg['limit']:,} training images" if size is None or cfg["limit"] < size else None


# How run_differences names the settings whose words need more than their own value.
SAID_OTHERWISE = {
    "leak": lambda cfg, metrics: "ReLU" if cfg["leak"] == 0 else f"leak {_fmt(cfg['leak'])}",
    "ae_epochs": _epochs,
    "clf_epochs": _epochs,
    "label_fraction": lambda cfg, metrics: None if cfg.get("label_count") else f"{cfg['label_fraction']:.0%} labels",
    "encoder_from": _pretrained_on,
    "limit": _subset,
}


def run_differences(metrics: dict) -> list[str]:
    """What sets a run apart from the lecture's settings on full CIFAR-10, in words: each setting
    that differs, by its Setting's words (cae/config.py) or SAID_OTHERWISE, in the settings' order."""
    from cae.config import SETTINGS

    cfg, parts = metrics.get("config") or {}, []
    for name, spec in SETTINGS.items():
        value = cfg.get(name, spec.default)
        if value == spec.default or value is None:
            continue
        said = SAID_OTHERWISE[name](cfg, metrics) if name in SAID_OTHERWISE else spec.words.format(value)
        if said and said not in parts:
            parts.append(said)
    return parts


def run_title(metrics: dict) -> str:
    """A readable title: the lecture's settings, or what differs from them, and the data."""
    parts = run_differences(metrics) or ["lecture's settings"]
    data = (metrics.get("dataset") or {}).get("name", "")
    if data and not data.startswith(("image folder cifar10", "CIFAR-10")):
        parts.append(f"on {data.split(' (')[0]}")
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def run_summary(metrics: dict, title: str | None = None) -> str:
    """One line for the top of every page that shows a run: title, data, test images, result."""
    n = test_images(metrics)
    data = (metrics.get("dataset") or {}).get("name", "unknown data")
    line = f"**{title or run_title(metrics)}** · {data}" + (f" · {n:,} test images" if n else "")
    pre = metrics.get("classifier") or []
    scratch = (metrics.get("scratch") or {}).get("classifier") or []
    if pre:
        line += f" · fine-tuned {pre[-1]['test_acc']:.1f}%"
        if scratch:
            line += f", scratch {scratch[-1]['test_acc']:.1f}%"
    elif metrics.get("autoencoder") and "test_mse" in metrics["autoencoder"][-1]:
        line += f" · test MSE {metrics['autoencoder'][-1]['test_mse']:.4f} (autoencoder only)"
    elif metrics.get("autoencoder"):
        line += " · contrastive pretraining only"
    return line


def with_article(word: str) -> str:
    """ "an airplane", "a cat": the indefinite article by the word's first letter."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def listing(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
