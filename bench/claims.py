"""Every sentence the pages print that compares numbers, for the four shipped runs, the shipped sweeps
and the bundled sample, as plain text: run it on two commits and diff the outputs to list every
claim that changed (the closing note of the evidence issue did that).

    python bench/claims.py > claims-after.txt
    (cd OLD_CHECKOUT && python /path/to/bench/claims.py) > claims-before.txt   # runs against its cae/

The sample's runs (the Small data preset, and Lecture mode's live recipe) are trained here in fp32,
about a minute on a 2-core CPU.
"""

from __future__ import annotations

import inspect
import os
import sys

sys.path.insert(0, os.getcwd())  # the checkout the command runs in, so an older commit's cae/ answers

from cae import config, lecture, report, words  # noqa: E402

try:  # the label-budget and objectives sentences, in cae/budget_report.py since 2026-12-05
    from cae import budget_report  # noqa: E402
except ImportError:
    budget_report = report
from cae.data import load_sample  # noqa: E402
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index  # noqa: E402
from cae.sweeps import budget_lines, grouped, load_label_budget, load_sweeps, seed_spread  # noqa: E402
from cae.train import run_experiment  # noqa: E402

NEW = "seeds" in inspect.signature(report.pretraining_verdict).parameters
CLASS_SEEDS = "seeds" in inspect.signature(report.class_extremes_sentence).parameters


def classes(metrics: dict) -> str | None:
    if CLASS_SEEDS:
        return report.class_extremes_sentence(metrics, seed_spread(metrics))
    return report.class_extremes_sentence(metrics)


def seeds_of(metrics: dict):
    if not NEW:
        return None
    from cae.sweeps import seed_spread

    return seed_spread(metrics)


def verdict(metrics: dict) -> str:
    return report.pretraining_verdict(metrics, seeds_of(metrics)) if NEW else report.pretraining_verdict(metrics)


def lecture_answers(run) -> None:
    sweeps = load_sweeps()
    code = lecture.code_numbers(run.metrics, sweeps["runs"] if sweeps else [])
    extra = {}
    if NEW:
        sample = load_sample()
        extra = {
            "seeds": seeds_of(run.metrics),
            "seen": lecture.recognition(run.autoencoder, run.classifier, sample.test.images, sample.test.labels),
        }
        if "objectives" in inspect.signature(lecture.answer).parameters:
            from cae.sweeps import OBJECTIVE_NAMES, load_objectives

            extra["objectives"] = (load_objectives() or {}).get("options")
            extra["names"] = OBJECTIVE_NAMES
        entry = (load_label_budget() or {}).get("sources", {}).get(run.name)
        if entry:
            points = [p for p in entry["points"] if p["budget"] in lecture.LECTURE_BUDGETS]
            extra["budget"] = budget_lines(points, load_label_budget().get("precision"))
    for step in lecture.STEPS:
        if step.question:
            said = lecture.answer(step, run.metrics, run.kernels, code, **extra)
            choice, why = (said.choice, said.why) if hasattr(said, "why") else said  # before the Answer class
            also = f" (also right, within noise: {', '.join(said.also)})" if getattr(said, "also", ()) else ""
            print(f"  lecture {step.key}: {choice}{also} — {why}")


def main() -> None:
    index = pretrained_index(PRETRAINED_DIR)
    for name, entry in index["runs"].items():
        run = load_run(PRETRAINED_DIR / name)
        print(f"== {entry['title']} ({name})")
        print(f"  title: {words.run_title(run.metrics)}")
        print(f"  verdict: {verdict(run.metrics)}")
        print(f"  classes: {classes(run.metrics)}")
        if name == index["default"]:
            lecture_answers(run)
    sweeps = load_sweeps()
    print("== Latent space sweeps")
    print(f"  latent size: {report.latent_size_sentence(grouped(sweeps['runs'], 'latent_dim', where={'leak': 0.1}))}")
    leaks = grouped(sweeps["runs"], "leak", where={"latent_dim": 1024})
    for measure, what in (("test_acc", "Fine-tuned accuracy"), ("knn", "k-NN accuracy of the code")):
        print(f"  leak: {report.sweep_sentence(leaks, measure, 'leak', what)}")
    if hasattr(budget_report, "objectives_sentence"):
        from cae.sweeps import OBJECTIVE_NAMES, load_objectives

        options = (load_objectives() or {}).get("options")
        print(f"== Objectives\n  {budget_report.objectives_sentence(options, OBJECTIVE_NAMES) if options else ''}")
    budget = load_label_budget()
    for entry in (budget or {}).get("sources", {}).values():
        lines = budget_lines(entry["points"], budget.get("precision")) if NEW else budget_lines(entry["points"])
        print(f"== Label budget, {entry['title']}\n  {budget_report.label_budget_sentence(lines)}")
    sample = load_sample()
    live_config = getattr(lecture, "live_config", None) or getattr(config, "live_config", None)  # moved 2026-12-06
    live = live_config(len(sample.train), len(sample.test)) if NEW else config.preset_config(config.QUICK_LOOK)
    for label, cfg in (("Small data preset", config.preset_config(config.SMALL_DATA)), ("Lecture's live run", live)):
        metrics = run_experiment(cfg.replace(precision="fp32"), sample).metrics
        print(f"== The sample: {label}")
        print(f"  title: {words.run_title(metrics)}")
        print(f"  verdict: {verdict(metrics)}")
        print(f"  classes: {classes(metrics)}")
        if NEW:
            print(f"  live: {report.live_run_sentence(metrics)}")


if __name__ == "__main__":
    main()
