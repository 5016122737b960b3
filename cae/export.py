"""Take a run home: the exact command that trains it again, and one standalone PyTorch script
(torch and torchvision only, no `cae`) generated from its settings."""

from __future__ import annotations

import pprint
import shlex
from pathlib import Path

from cae.config import SETTINGS, Config
from cae.runs import Run, RunError

TEMPLATE = Path(__file__).parent / "assets" / "standalone.py"
CONFIG_LINE = "CONFIG = {}  # <the run's settings>"
# The settings the script uses, in the order it lists them (the precision is the run's resolved one).
SCRIPT_FIELDS = tuple(name for name, spec in SETTINGS.items() if spec.script)


def data_argument(run: Run) -> str:
    """Where the run's (fine-tuning) images were: its recorded folder (or "sample"), else a
    placeholder named after the data."""
    dataset = run.metrics["dataset"]
    return dataset.get("origin") or f"PATH/TO/{dataset['name'].split()[-1]}"


def reproduce_command(run: Run, source_dir: Path | None = None) -> str:
    """`python -m cae train ...` with every setting that differs from the lecture's defaults, so
    the command asks for exactly this run (it is found, not retrained, where it exists)."""
    cfg, default = run.config, Config()
    parts = ["python", "-m", "cae", "train"]
    for field, spec in SETTINGS.items():
        value = getattr(cfg, field)
        if spec.option is None or field == "encoder_from" or value == getattr(default, field) or value is None:
            continue
        if spec.kind == "bool":
            parts.append(spec.option)  # the switch away from the default
        else:
            parts += [spec.option, f"{value:g}" if isinstance(value, float) else str(value)]
    if cfg.encoder_from:
        parts += ["--encoder-from", str(source_dir or f"RUN_DIR_OF_{run.metrics.get('autoencoder_source')}")]
    return shlex.join([*parts, "--data", data_argument(run)])


def standalone_script(run: Run, title: str) -> str:
    """A readable PyTorch script that trains this run's model with its recipe (autoencoder,
    fine-tuning, scratch baseline) on CIFAR-10 or an image folder and prints one line per epoch.
    A transfer run is refused: its encoder was trained by another run, whose script is the one to take."""
    if run.config.encoder_from:
        raise RunError(
            f"This run fine-tunes the encoder of {run.metrics.get('autoencoder_source')} (trained on "
            f"{(run.metrics.get('pretraining_dataset') or {}).get('name', 'other data')}); export that "
            "run's script, which trains the encoder too."
        )
    settings = {field: getattr(run.config, field) for field in SCRIPT_FIELDS}
    settings["precision"] = run.metrics.get("precision", "fp32")  # as resolved when the run trained
    config = "CONFIG = " + pprint.pformat(settings, width=100, sort_dicts=False) + f"  # run {run.name}"
    text = TEMPLATE.read_text()
    if CONFIG_LINE not in text:
        raise RunError(f"The export template {TEMPLATE} has no settings line.")
    script_name = f"{run.name}.py"
    return (
        text.replace(CONFIG_LINE, config)
        .replace('"""TITLE', f'"""{title}', 1)
        .replace("python SCRIPT", f"python {script_name}")
    )
