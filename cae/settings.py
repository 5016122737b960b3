"""How one setting of the experiment is described once: its range and the sentence that refuses a
value outside it, its command-line option, its words in a run's title and its Train-page widget.
cae/config.py declares every Config field with `setting(...)`; cae/__main__.py, cae/export.py,
cae/words.py and app_pages/train.py read the descriptions (config.SETTINGS)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    """One Config field as every place that shows or checks it sees it. From this one description
    come the check and its sentence (`validate`), the command line's option (cae/__main__.py), the
    exported command and script (cae/export.py), how a run that differs names it
    (words.run_differences) and the Train page's widget, so a new setting is written here only."""

    name: str
    kind: str  # "int", "float", "str" or "bool"
    optional: bool  # None is allowed, meaning `empty`
    default: object
    help: str  # what it does: the command line's help
    low: float | None = None
    high: float | None = None
    above: bool = False  # `low` itself is refused (a learning rate is above 0)
    choices: tuple = ()
    pattern: str | None = None  # a str's form (encoder_from: an autoencoder key)
    rule: str = ""  # the allowed values in words, where the range alone does not say them
    gloss: str = ""  # after the name in a sentence: "leak (the LeakyReLU slope)"
    empty: str = ""  # what None means: "all images"
    flag: str | None = ""  # the command line's option: "" from the name, None for none
    script: bool = True  # in the exported script's CONFIG
    group: str = ""  # model | autoencoder | objective | classifier | data | execution
    words: str = ""  # how a run that differs is named, formatted with the value ("lr {:g}"); "": see
    # words.SAID_OTHERWISE, or not named
    form: dict | None = None  # the Train page's widget (label, widget, range or choices, column, help)

    @property
    def option(self) -> str | None:
        return None if self.flag is None else (self.flag or "--" + self.name.replace("_", "-"))

    def problem(self, value) -> str | None:
        """The sentence that refuses `value`, or None when it is allowed."""
        if value is None and self.optional:
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"{self.name} must be true or false."
        if self.kind == "str":
            ok = isinstance(value, str) and (
                value in self.choices if self.choices else re.fullmatch(self.pattern or ".*", value) is not None
            )
        elif self.kind == "int":
            ok = _is_int(value) and self.low <= value <= (2**31 - 1 if self.high is None else self.high)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and self._in_range(value)
        return None if ok else f"{self.name}{self.gloss and ' ' + self.gloss} must be {self.allowed()}, got {value!r}."

    def _in_range(self, value: float) -> bool:
        return (self.low < value if self.above else self.low <= value) and value <= self.high

    def allowed(self) -> str:
        """The allowed values in words: "a whole number from 2 to 4096", "one of auto, fp32, bf16"."""
        if self.rule:
            text = self.rule
        elif self.choices:
            text = f"one of {', '.join(self.choices)}"
        elif self.kind == "int":
            text = (
                f"a whole number of at least {_number(self.low)}"
                if self.high is None
                else f"a whole number from {_number(self.low)} to {_number(self.high)}"
            )
        else:
            low, high = _number(self.low), _number(self.high)
            text = f"above {low} and at most {high}" if self.above else f"from {low} to {high}"
        return f"empty{self.empty and f' ({self.empty})'} or {text}" if self.optional else text


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def setting(default, help: str, **spec):
    """A Config field with its Setting description (see `Setting`; name, kind and default come
    from the field itself)."""
    return field(default=default, metadata={"setting": {"help": help, **spec}})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
