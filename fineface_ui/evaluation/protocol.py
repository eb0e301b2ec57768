"""The paper's evaluation protocol (section 5.1): per prompt, the twelve AUs alone at intensities 1..5 and
50 AU combinations, one seed per prompt, and the neutral image (all AUs 0) as CLIP-I's reference.

15 prompts x (12 x 5 + 50) = 1,650 images, as in the paper's Table 1. The prompts are ours (the paper
does not list its own), with the two its figures show; the combinations are fixed in combinations.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..aus import AU_NAMES, au_dict

PROMPTS = (
    "A close-up of Barack Obama",
    "An Asian woman in the park",
    "A portrait photo of an elderly man with a grey beard, studio lighting",
    "A young woman with curly red hair on a city street at night",
    "A middle-aged Black man in a suit in an office",
    "A teenage boy with freckles at the beach, golden hour",
    "A photo of a woman wearing glasses in a library",
    "An old woman with white hair in her kitchen",
    "A close-up portrait of a man with a shaved head, dark background",
    "A Latina woman in a denim jacket in a sunflower field",
    "A bearded man wearing a wool hat in the snow",
    "A young South Asian man on a train, window light",
    "A woman with short blonde hair in a cafe, shallow depth of field",
    "A photo of a firefighter in uniform in front of a fire truck",
    "A smiling grandmother and the garden behind her, overcast daylight",
)
INTENSITIES = (1, 2, 3, 4, 5)
SINGLE, COMBINATION, NEUTRAL = "single", "combination", "neutral"
# The pipelines an evaluation runs: text + AUs (the paper's Table 1), and text + AUs + one identity photo.
VARIANTS = ("sd21", "sd15-identity")


@lru_cache(maxsize=1)
def combinations() -> tuple[dict[str, float], ...]:
    """The 50 AU combinations of every prompt, in their fixed order."""
    document = json.loads((Path(__file__).with_name("combinations.json")).read_text())
    return tuple(au_dict(item) for item in document["combinations"])


@dataclass(frozen=True)
class Case:
    """One image of the protocol: a prompt, its seed and the AUs asked for."""

    case_id: str  # names the image file and the results row
    group: str  # SINGLE, COMBINATION or NEUTRAL
    prompt_index: int
    aus: dict[str, float] = field(hash=False)  # all twelve

    @property
    def prompt(self) -> str:
        return PROMPTS[self.prompt_index]

    @property
    def seed(self) -> int:
        return self.prompt_index  # one seed per prompt: every AU setting of a prompt starts from the same noise


def _prompt_cases(index: int) -> list[Case]:
    zeros = dict.fromkeys(AU_NAMES, 0.0)
    singles = [Case(f"p{index:02d}-{name}-{level}", SINGLE, index, {**zeros, name: float(level)})
               for name in AU_NAMES for level in INTENSITIES]
    combined = [Case(f"p{index:02d}-combination-{number:02d}", COMBINATION, index, aus)
                for number, aus in enumerate(combinations(), start=1)]
    return singles + combined


def _quick_order(per_prompt: list[list[Case]]) -> list[Case]:
    """Every case, ordered so that any first stretch covers all prompts and as many AUs, intensities and
    combinations as it can: round by round one case per prompt, single-AU rounds and combination rounds
    interleaved in proportion; in a single-AU round the prompts ask for different AUs (the first covers all
    twelve), and across rounds each AU turns through its intensities."""
    count, levels = len(AU_NAMES), len(INTENSITIES)
    singles = [[case for case in cases if case.group == SINGLE] for cases in per_prompt]  # AU-major, as made
    combined = [[case for case in cases if case.group == COMBINATION] for cases in per_prompt]
    kinds = sorted([((j + 0.5) / len(singles[0]), SINGLE) for j in range(len(singles[0]))]
                   + [((j + 0.5) / len(combined[0]), COMBINATION) for j in range(len(combined[0]))])
    order, seen = [], {SINGLE: 0, COMBINATION: 0}
    for _, kind in kinds:
        step = seen[kind]
        seen[kind] += 1
        for prompt in range(len(per_prompt)):
            if kind == SINGLE:
                j = (step + 5 * prompt) % len(singles[prompt])  # 5 is prime to 12: the prompts' AUs differ
                au, level = j % count, (j % count + j // count) % levels
                order.append(singles[prompt][au * levels + level])
            else:
                order.append(combined[prompt][(step + prompt * len(combined[prompt]) // len(per_prompt))
                                              % len(combined[prompt])])
    return order


def neutral_case(prompt_index: int) -> Case:
    """The reference image of a prompt: its seed with all AUs at 0."""
    return Case(f"p{prompt_index:02d}-neutral", NEUTRAL, prompt_index, dict.fromkeys(AU_NAMES, 0.0))


def paper_cases(limit: int | None = None) -> list[Case]:
    """The protocol's cases, prompt by prompt; with `limit`, only that many, spread so that a quick run
    covers every prompt and as many AUs, intensities and combinations as it can."""
    per_prompt = [_prompt_cases(index) for index in range(len(PROMPTS))]
    if limit is None or limit >= sum(map(len, per_prompt)):
        return [case for cases in per_prompt for case in cases]
    chosen = set(_quick_order(per_prompt)[:limit])
    return [case for cases in per_prompt for case in cases if case in chosen]
