"""Policies: files with YAML front matter (id, version, title, description, categories) and a body.

The body is the text that goes, verbatim (after neutralising), into the prompt's policy block.
A caller's inline policy becomes a `Policy` with id `inline`, hashed like any other.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .neutralise import HiddenKind

INLINE_POLICY_ID = "inline"
_POLICY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CATEGORY_ID = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
# In an inline policy, a line such as "X1 - Harassment" or "S3: Sex crimes" declares a category.
_INLINE_CATEGORY_LINE = re.compile(r"^\s*([A-Z][A-Z0-9_]{0,15})\s*(?:[-:.)]|\u2013|\u2014)\s*(.+)$")


class PolicyFileError(ValueError):
    """A policy file that cannot be served; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    version: str
    body: str
    title: str = ""
    description: str = ""
    categories: tuple[Category, ...] = ()
    source: str = ""
    sha256: str = field(init=False)
    # The ids in the policy's order; computed once (the hot path reads it on every request).
    category_ids: tuple[str, ...] = field(init=False)
    # Invisible content a caller's inline policy carried (made visible in `body`).
    hidden: frozenset[HiddenKind] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.body.encode("utf-8")).hexdigest())
        object.__setattr__(self, "category_ids", tuple(c.id for c in self.categories))


def inline_policy(text: str, hidden: frozenset[HiddenKind] = frozenset()) -> Policy:
    """A caller's own policy text (as judged); category ids are read from lines like `X1 - name`."""
    categories: dict[str, Category] = {}
    for line in text.splitlines():
        match = _INLINE_CATEGORY_LINE.match(line)
        if match and match.group(1) not in categories:
            categories[match.group(1)] = Category(match.group(1), match.group(2).strip())
    return Policy(
        id=INLINE_POLICY_ID,
        version="",
        body=text,
        title="Inline policy",
        categories=tuple(categories.values()),
        source="request",
        hidden=hidden,
    )


def _split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        raise PolicyFileError(f"{path}: must start with a '---' front matter block")
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise PolicyFileError(f"{path}: front matter is not closed by a '---' line")
    header, body = parts
    try:
        meta = yaml.safe_load(header[3:])
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"{path}: front matter is not valid YAML ({exc})") from exc
    if not isinstance(meta, dict):
        raise PolicyFileError(f"{path}: front matter must be a mapping")
    return meta, body.split("\n", 1)[1] if "\n" in body else ""


def _require_str(meta: dict[str, Any], key: str, path: Path) -> str:
    value = meta.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PolicyFileError(f"{path}: field '{key}' is required")
    if not isinstance(value, str | int | float):
        raise PolicyFileError(f"{path}: field '{key}' must be a string")
    return str(value).strip()


def _categories(meta: dict[str, Any], path: Path) -> tuple[Category, ...]:
    raw = meta.get("categories", [])
    if not isinstance(raw, list):
        raise PolicyFileError(f"{path}: field 'categories' must be a list")
    seen: set[str] = set()
    categories: list[Category] = []
    for index, item in enumerate(raw):
        where = f"{path}: field 'categories[{index}]"
        if not isinstance(item, dict):
            raise PolicyFileError(f"{where}' must be a mapping with id and name")
        category_id = str(item.get("id", ""))
        if not _CATEGORY_ID.match(category_id):
            raise PolicyFileError(f"{where}.id' {category_id!r} must match {_CATEGORY_ID.pattern}")
        if category_id in seen:
            raise PolicyFileError(f"{where}.id' {category_id!r} is duplicated")
        seen.add(category_id)
        name = str(item.get("name", "")).strip()
        if not name:
            raise PolicyFileError(f"{where}.name' is required")
        categories.append(Category(category_id, name, str(item.get("description", "")).strip()))
    return tuple(categories)


def load_policy_file(path: Path) -> Policy:
    """Parse and validate one policy file; raises PolicyFileError naming the file and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{path}: cannot be read ({exc})") from exc
    meta, body = _split_front_matter(text, path)
    policy_id = _require_str(meta, "id", path)
    if not _POLICY_ID.match(policy_id):
        raise PolicyFileError(f"{path}: field 'id' {policy_id!r} must match {_POLICY_ID.pattern}")
    if not body.strip():
        raise PolicyFileError(f"{path}: the policy body (after the front matter) is empty")
    return Policy(
        id=policy_id,
        version=_require_str(meta, "version", path),
        title=_require_str(meta, "title", path),
        description=str(meta.get("description", "")).strip(),
        categories=_categories(meta, path),
        body=body.strip() + "\n",
        source=str(path),
    )


def load_policy_dirs(directories: list[Path]) -> dict[str, Policy]:
    """All `*.md` policies of the given folders; a duplicated id is an error naming both files."""
    policies: dict[str, Policy] = {}
    for directory in directories:
        if not directory.is_dir():
            raise PolicyFileError(f"{directory}: policy folder does not exist")
        for path in sorted(directory.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            policy = load_policy_file(path)
            if policy.id in policies:
                raise PolicyFileError(
                    f"{path}: field 'id' {policy.id!r} is already defined by "
                    f"{policies[policy.id].source}"
                )
            policies[policy.id] = policy
    return policies
