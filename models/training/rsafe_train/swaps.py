"""Policy-swap augmentation: the same content judged under policies that do or do not cover it.

RSafe's point is a guard that reads the policy in its prompt instead of memorising one taxonomy.
From each labelled item this makes extra views, each with its own policy text (`Example.policy`):

- an unsafe item with a known category, under a policy that LISTS that category among a few others
  (gold `unsafe`), and under one that LEAVES OUT its whole family (`categories.FAMILIES`), or leaves
  it out and says it is allowed (gold `safe`);
- a safe item under a sampled subset of the default policy (still `safe`); everyday content also
  under a subset of another shipped policy (`policies/*.md`): it is safe under every policy.

The policies are sampled subsets of a shipped policy's categories, rendered in that policy's own
format (its context lines, then the chosen categories' blocks in the file's order): short policies
also make training much cheaper (the cost is dominated by prompt tokens). Everything is seeded.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from rsafe_core.policy import Policy, load_policy_dirs

from rsafe_train.categories import family
from rsafe_train.data import SAFE, UNSAFE, Example
from rsafe_train.prompts import POLICIES_DIR

# A category block starts with its id at the start of a line ("U1 - …", "F3 - …: …").
_BLOCK_START = re.compile(r"^([A-Z][A-Z0-9_]{0,15})\s*(?:[-:.)]|\u2013|\u2014)\s*\S")
ALLOW_PREFIX = "Allowed here:"
# Sources whose safe items are safe under any policy at all (not only the default's subsets).
UNIVERSALLY_SAFE_SOURCES = frozenset({"rho-everyday", "project-everyday"})


@dataclass(frozen=True)
class PolicyLayout:
    """A policy body split into its context lines and one text block per category id."""

    policy: Policy
    context: tuple[str, ...]
    blocks: dict[str, str]

    @classmethod
    def of(cls, policy: Policy) -> PolicyLayout:
        context: list[str] = []
        blocks: dict[str, list[str]] = {}
        current: str | None = None
        for line in policy.body.strip().splitlines():
            match = _BLOCK_START.match(line)
            if match and match.group(1) in policy.category_ids:
                current = match.group(1)
                blocks[current] = [line]
            elif current is not None and line.startswith((" ", "\t")):
                blocks[current].append(line)
            elif current is None and line.strip():
                context.append(line)
        return cls(policy, tuple(context), {k: "\n".join(v) for k, v in blocks.items()})

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i for i in self.policy.category_ids if i in self.blocks)

    def render(self, ids: Iterable[str], allowed: str | None = None) -> str:
        """The body with only `ids` (in the policy's order) and, optionally, an allowance line."""
        chosen = set(ids)
        lines = list(self.context)
        if allowed:
            lines.append(f"{ALLOW_PREFIX} {allowed} is allowed on this platform.")
        lines += [self.blocks[i] for i in self.ids if i in chosen]
        return "\n".join(lines) + "\n"


def _sample(rng: random.Random, pool: Sequence[str], low: int, high: int) -> list[str]:
    return rng.sample(list(pool), min(len(pool), rng.randint(low, high)))


@dataclass
class SwapBuilder:
    """Makes the swap views of items judged under `default` (rsafe-default ids in `category`)."""

    default: Policy
    others: Sequence[Policy] = ()
    seed: int = 0
    allow_share: float = 0.3  # share of "leave out" views that also say the category is allowed
    min_categories: int = 2
    max_categories: int = 6
    # Other shipped policies spell each category out over several lines: fewer of them keep the
    # prompt short (cost) and within the training length.
    max_other_categories: int = 3
    # The covering view repeats what the default policy already shows (its category listed):
    # it can be left out when the budget is tight.
    with_covering: bool = True

    def __post_init__(self) -> None:
        self._default = PolicyLayout.of(self.default)
        self._others = [PolicyLayout.of(p) for p in self.others if p.category_ids]
        self._names = {c.id: c.name for c in self.default.categories}

    def _rng(self, example: Example, view: str) -> random.Random:
        return random.Random(f"{self.seed}\x00{view}\x00{example.source}\x00{example.prompt}")

    def covering(self, example: Example) -> Example | None:
        """The item under a short policy that lists its category: unsafe."""
        category = example.category
        if example.label != UNSAFE or category not in self._names:
            return None
        rng = self._rng(example, "covering")
        others = [i for i in self._default.ids if i != category]
        ids = [category, *_sample(rng, others, self.min_categories - 1, self.max_categories - 1)]
        return replace(example, policy=self._default.render(ids), label=UNSAFE)

    def leaving_out(self, example: Example) -> Example | None:
        """The item under a policy without its category's family (maybe allowing it): safe."""
        category = example.category
        if example.label != UNSAFE or category not in self._names:
            return None
        rng = self._rng(example, "leaving-out")
        pool = [i for i in self._default.ids if i not in family(category)]
        ids = _sample(rng, pool, self.min_categories, self.max_categories)
        allowed = self._names[category] if rng.random() < self.allow_share else None
        return replace(example, policy=self._default.render(ids, allowed), label=SAFE)

    def safe_elsewhere(self, example: Example) -> Example | None:
        """A safe item under a sampled policy: the default's subset, or for everyday content
        any shipped policy's subset."""
        if example.label != SAFE:
            return None
        rng = self._rng(example, "safe")
        layouts = [self._default]
        if example.source in UNIVERSALLY_SAFE_SOURCES:
            layouts += self._others
        layout = rng.choice(layouts)
        most = self.max_categories if layout is self._default else self.max_other_categories
        ids = _sample(rng, layout.ids, self.min_categories, most)
        return replace(example, policy=layout.render(ids))

    def views(self, example: Example) -> list[Example]:
        """The swap views of one item (the item itself, under the default, is not included)."""
        covering = self.covering(example) if self.with_covering else None
        made = (covering, self.leaving_out(example), self.safe_elsewhere(example))
        return [view for view in made if view is not None]


def with_swaps(examples: Sequence[Example], builder: SwapBuilder) -> list[Example]:
    """Every item under the default policy, followed by its swap views; then shuffled (seeded)."""
    out = list(examples)
    for example in examples:
        out.extend(builder.views(example))
    random.Random(builder.seed).shuffle(out)
    return out


def default_builder(
    seed: int = 0, default_id: str = "rsafe-default", *, with_covering: bool = True
) -> SwapBuilder:
    """Swaps from the shipped policies: `default_id` (whose ids `Example.category` uses) for the
    covering / leaving-out views, every other shipped policy for everyday content."""
    policies = load_policy_dirs([POLICIES_DIR])
    default = policies.pop(default_id)
    others = [policies[key] for key in sorted(policies)]
    return SwapBuilder(default, others, seed=seed, with_covering=with_covering)
