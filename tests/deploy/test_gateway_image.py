"""docker/gateway.Dockerfile and its pinned requirements (checked statically; no Docker engine here)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from .deploy_helpers import ROOT, run_tool

DOCKERFILE = ROOT / "docker" / "gateway.Dockerfile"
LOCK = ROOT / "docker" / "gateway-requirements.lock"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[_normalise(match[1])] = match[2]
    return pins


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_lock_pins_every_pyproject_dependency_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lock = _lock()
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;]+)", requirement)
        assert match, f"pyproject dependency is not an exact pin: {requirement}"
        assert lock.get(_normalise(match[1])) == match[3], (
            f"lock and pyproject differ on {requirement}"
        )
    assert "rsafe-gateway" not in lock


def test_base_image_is_a_pinned_python_311_slim() -> None:
    (arg,) = [
        rest
        for keyword, rest in _instructions()
        if keyword == "ARG" and rest.startswith("PYTHON_IMAGE=")
    ]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", arg)
    froms = [rest for keyword, rest in _instructions() if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)


def test_runtime_stage_is_lean_and_non_root() -> None:
    runtime = _runtime_stage()
    runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    assert "apt-get" not in runs and "pip install" not in runs
    (user,) = [rest for keyword, rest in runtime if keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root user (runAsNonRoot can verify it)"
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert any(c.startswith("--from=builder") for c in copies)
    assert "policies/ /app/policies/" in copies
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "RSAFE_SHIPPED_POLICY_DIR=/app/policies" in env
    assert "RSAFE_HOST=0.0.0.0" in env


def test_entrypoint_and_healthcheck_are_exec_form() -> None:
    runtime = dict(_runtime_stage())
    assert json.loads(runtime["ENTRYPOINT"]) == ["python", "-m", "rsafe_gateway"]
    healthcheck = runtime["HEALTHCHECK"]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    compile(command[2], "<healthcheck>", "exec")


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignore = (DOCKERFILE.parent / (DOCKERFILE.name + ".dockerignore")).read_text(encoding="utf-8")
    allowed = {line[1:].rstrip("/") for line in ignore.splitlines() if line.startswith("!")}
    for keyword, rest in _instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = [part for part in rest.split() if not part.startswith("--")]
            for source in sources:
                assert source.rstrip("/") in allowed, f"{source} is excluded from the build context"
                assert (ROOT / source).exists(), source


def test_hadolint_passes(tools_bin: Path) -> None:
    result = run_tool(tools_bin, "hadolint", "--failure-threshold", "error", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_ships_every_data_file_of_the_gateway() -> None:
    """`pip install .` (the image's build step) takes .py files with the packages and other files
    only through package-data: the migrations' config and template, the playground's assets."""
    package = ROOT / "service" / "rsafe_gateway"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["rsafe_gateway"]
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    data_files = {
        path
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    assert data_files, "no data files found: the test looks in the wrong place"
    assert sorted(str(p.relative_to(package)) for p in data_files - shipped) == []
