"""The explanation sentence stays true to its numbers: parsed back, the factors it names for and against the class
have the right signs, are the strongest on their side, and with the net of the rest add up to the total."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from trendcast.explain.explanation import FeatureContribution, build_sentence

FACTOR = re.compile(r"(?:^|, | and )(?P<label>.+?) at (?P<value>\S+) \((?P<contribution>[+-]\d+\.\d+)\)")
REST = re.compile(r"(?P<count>\d+) smaller factors? net (?P<net>[+-]\d+\.\d+) (?P<side>towards \w+|against it)")


@dataclass
class Parsed:
    towards: list[tuple[str, float]]
    against: list[tuple[str, float]]
    rest: tuple[int, float, str] | None
    decimals: int  # of the contributions shown


def parse(sentence: str, label: str) -> Parsed:
    """The named factors of each clause and the rest's net, read from the text alone."""
    towards: list[tuple[str, float]] = []
    against: list[tuple[str, float]] = []
    rest = None
    decimals = 0
    for clause in sentence.split(": ", 1)[1].rstrip(".").split("; "):
        factors = [(m["label"], m["contribution"]) for m in FACTOR.finditer(clause)]
        if clause.endswith(f"pushed towards {label}"):
            towards = [(name, float(c)) for name, c in factors]
        elif clause.endswith("pushed against it"):
            against = [(name, float(c)) for name, c in factors]
        elif (match := REST.fullmatch(clause)) is not None:
            rest = (int(match["count"]), float(match["net"]), match["side"])
            factors = [("rest", match["net"])]
        decimals = max([decimals] + [len(c.split(".")[1]) for _, c in factors])
    return Parsed(towards, against, rest, decimals)


def feature(i: int, contribution: float) -> FeatureContribution:
    return FeatureContribution(f"f{i}", f"Factor {i}", "returns", contribution, 0.0, f"{i}.5%")


contributions = st.lists(
    st.one_of(st.just(0.0), st.floats(-0.5, 0.5, allow_nan=False, allow_subnormal=False)), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(contributions, st.sampled_from(["Down", "Neutral", "Up"]))
def test_named_factors_and_the_rest_add_up_to_the_total(values: list[float], label: str) -> None:
    features = [feature(i, c) for i, c in enumerate(values)]
    sentence = build_sentence(label, 0.4, features, None, None)
    parsed = parse(sentence, label)
    by_label = {f.label: f.contribution for f in features}
    assert all(c > 0 for _, c in parsed.towards) and all(c < 0 for _, c in parsed.against)
    assert len(parsed.towards) <= 2 and len(parsed.against) <= 2
    for side, sign in ((parsed.towards, 1), (parsed.against, -1)):  # the strongest on their side, largest first
        strongest = sorted((v for v in values if sign * v > 0), key=abs, reverse=True)[: len(side)]
        assert [by_label[name] for name, _ in side] == strongest
    if parsed.rest is not None:
        count, net, side = parsed.rest
        assert (net > 0) == side.startswith("towards") and net != 0
        assert count == sum(v != 0 for v in values) - len(parsed.towards) - len(parsed.against)
    shown = sum(c for _, c in parsed.towards + parsed.against) + (parsed.rest[1] if parsed.rest else 0.0)
    terms = len(parsed.towards) + len(parsed.against) + 2  # each shown number and the omitted rest round once
    assert abs(shown - math.fsum(values)) <= terms * 0.5 * 10**-parsed.decimals + 1e-12, sentence


def test_the_defect_many_small_factors_for_and_three_large_against() -> None:
    """The reported case: three sizeable factors against Up, many small ones for it, net towards Up."""
    features = [feature(0, -0.20), feature(1, -0.12), feature(2, -0.08)] + [feature(3 + i, 0.02) for i in range(45)]
    sentence = build_sentence("Up", 0.39, features, None, None)
    assert sentence == (
        "Up (0.39): Factor 3 at 3.5% (+0.02) and Factor 4 at 4.5% (+0.02) pushed towards Up; "
        "Factor 0 at 0.5% (-0.20) and Factor 1 at 1.5% (-0.12) pushed against it; "
        "44 smaller factors net +0.78 towards Up."
    )


def test_sentence_wording_with_attention_and_without_any_factor() -> None:
    features = [feature(0, 0.2), feature(1, -0.1), feature(2, 0.05)]
    assert build_sentence("Up", 0.6241, features, 5, 0.4849) == (
        "Up (0.62): Factor 0 at 0.5% (+0.20) and Factor 2 at 2.5% (+0.05) pushed towards Up; "
        "Factor 1 at 1.5% (-0.10) pushed against it; the last 5 days carried 48% of the attention."
    )
    assert build_sentence("Neutral", 0.5, [feature(0, 0.0)], None, None) == (
        "Neutral (0.50): no feature moved it away from the base rate."
    )
    rest = build_sentence("Down", 0.5, [feature(0, 0.3), feature(1, 0.2), feature(2, -0.01)], None, None)
    assert rest == "Down (0.50): Factor 0 at 0.5% (+0.30) and Factor 1 at 1.5% (+0.20) pushed towards Down; " + (
        "Factor 2 at 2.5% (-0.01) pushed against it."
    )
