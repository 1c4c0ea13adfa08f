"""What ``pip install hostpulse`` puts into site-packages, and what runs on the base install.

The wheel is built once (from a copy of the sources, so no ``build/`` is left in the
repository) and unpacked into a folder that the subprocesses put first on ``sys.path``:
they run the wheel's code, not the repository's. "Base install" is simulated with an
import hook that refuses the server and compat dependencies, since this venv has them.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# repository folder -> where it is installed
MAPPED = {
    "app": "hostpulse/app",
    "agent": "hostpulse/agent",
    "compat": "hostpulse/compat",
    "porter": "hostpulse/porter",
    "hostpulse": "hostpulse",
}
DATA_SUFFIXES = {".toml", ".html", ".js", ".css"}
# Python files shipped as data, in folders that are not packages
DATA_PY = ("compat/corpus/scripts/",)
# Not on a monitored host: the [server] and [compat] extras, and what they bring.
BLOCKED = (
    "flask",
    "werkzeug",
    "quart",
    "hypercorn",
    "gunicorn",
    "itsdangerous",
    "jinja2",
    "hypothesis",
    "simdjson",
    "numpy",
    "psycopg",
)

# argv: site-folder, then "module:attr" and the argv to call it with (or "-" to only import)
RUNNER = """
import importlib, sys
from importlib.abc import MetaPathFinder

BLOCKED = set(sys.argv[1].split(",")) if sys.argv[1] else set()

class Refuse(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the base install)", name=name)
        return None

sys.meta_path.insert(0, Refuse())
for loaded in [m for m in sys.modules if m.partition(".")[0] in BLOCKED]:
    del sys.modules[loaded]
site = sys.argv[2]
sys.path.insert(0, site)
if BLOCKED:
    try:
        import werkzeug
    except ImportError:
        pass
    else:
        raise SystemExit("the import hook let werkzeug through")
target, args = sys.argv[3], sys.argv[4:]
if target == "-":
    for name in args:
        module = importlib.import_module(name)
        assert module.__file__.startswith(site), (name, module.__file__)
    raise SystemExit(0)
module_name, _, attr = target.partition(":")
obj = importlib.import_module(module_name)
assert obj.__file__.startswith(site), (module_name, obj.__file__)
for part in attr.split("."):
    obj = getattr(obj, part)
sys.argv = args
sys.exit(obj())
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HOSTPULSE_", "PYTHON"))}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in MAPPED:
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    out = work / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("hostpulse-*.whl")
    return built


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(folder)
    return folder


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _entry_points(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(zf.read(name).decode())
    return dict(parser["console_scripts"])


def _run(site: Path, target: str, *args: str, blocked: tuple[str, ...] = BLOCKED, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-I", "-c", RUNNER, ",".join(blocked), str(site), target, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=cwd or site.parent,
    )


def test_only_the_hostpulse_namespace_is_installed(wheel: Path) -> None:
    names = _names(wheel)
    tops = {n.split("/", 1)[0] for n in names}
    dist_info = {t for t in tops if t.startswith("hostpulse-") and t.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert tops - dist_info == {"hostpulse"}, f"top-level entries besides hostpulse/: {sorted(tops - dist_info)}"
    with zipfile.ZipFile(wheel) as zf:
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert zf.read(top_level).decode().split() == ["hostpulse"]


def test_app_agent_compat_and_their_data_are_inside(wheel: Path) -> None:
    names = _names(wheel)
    for required in (
        "hostpulse/cli.py",
        "hostpulse/app/__init__.py",
        "hostpulse/app/views/__init__.py",
        "hostpulse/app/static/dashboard/overview.html",  # the dashboard's files (no __init__.py)
        "hostpulse/app/static/dashboard/host.html",
        "hostpulse/app/static/dashboard/dashboard.js",
        "hostpulse/app/static/dashboard/dashboard.css",
        "hostpulse/agent/__init__.py",
        "hostpulse/agent/__main__.py",
        "hostpulse/compat/__init__.py",
        "hostpulse/compat/__main__.py",
        "hostpulse/compat/allowlist.toml",
        "hostpulse/compat/corpus/api.toml",
        "hostpulse/compat/flask_app/__init__.py",
        "hostpulse/compat/flask_app/views/__init__.py",
        # the dashboard's chart library ships with its licence and version note
        "hostpulse/app/static/dashboard/uPlot.iife.min.js",
        "hostpulse/app/static/dashboard/uPlot.LICENSE",
        "hostpulse/app/static/dashboard/uPlot.NOTICE",
    ):
        assert required in names
    # every module of a package folder and every data file of the repository's packages:
    # a subpackage missing from [tool.setuptools] packages shows here
    missing = []
    for folder, installed in MAPPED.items():
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT / folder).as_posix()
            in_package = (path.parent / "__init__.py").exists()
            wanted = (path.suffix == ".py" and (in_package or f"{folder}/{rel}".startswith(DATA_PY))) or (
                path.suffix in DATA_SUFFIXES and in_package
            )
            if wanted and f"{installed}/{rel}" not in names:
                missing.append(f"{folder}/{rel}")
    assert not missing, f"not in the wheel: {missing}"
    assert any(n.startswith("hostpulse/compat/corpus/scripts/") for n in names)


def test_console_scripts_answer_help_on_the_base_install(wheel: Path, site: Path) -> None:
    scripts = _entry_points(wheel)
    assert {"hostpulse", "hostpulse-agent", "hostpulse-compat"} <= set(scripts)
    failures = []
    for name, target in sorted(scripts.items()):
        if name == "hostpulse-compat":  # needs its extra: tested below
            continue
        proc = _run(site, target, name, "--help")
        if proc.returncode != 0 or "usage:" not in proc.stdout:
            failures.append(f"{name} ({target}): exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    assert not failures, "\n".join(failures)


def test_hostpulse_compat_answers_help_with_its_extra(wheel: Path, site: Path) -> None:
    proc = _run(site, _entry_points(wheel)["hostpulse-compat"], "hostpulse-compat", "--help", blocked=())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "usage:" in proc.stdout


def test_cli_manages_tokens_on_the_base_install(wheel: Path, site: Path, tmp_path: Path) -> None:
    target = _entry_points(wheel)["hostpulse"]
    instance = str(tmp_path / "instance")
    for args in (["init"], ["token-add", "bob", "--role", "viewer"], ["tokens"], ["token-revoke", "bob"]):
        proc = _run(site, target, "hostpulse", "--instance", instance, *args)
        assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    assert (tmp_path / "instance" / "agent.toml").exists()


def test_agent_imports_with_the_base_dependencies_only(site: Path) -> None:
    modules = sorted(
        "hostpulse.agent" + ("" if p.stem == "__init__" else "." + p.stem)
        for p in (site / "hostpulse" / "agent").glob("*.py")
    )
    assert "hostpulse.agent.__main__" in modules
    proc = _run(site, "-", *modules)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("package", ["agent", "compat"])
def test_python_m_from_the_repository_root(package: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", package, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=_env()
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "usage:" in proc.stdout


def test_top_level_names_import_from_the_repository_root() -> None:
    code = (
        "import app, agent, compat.flask_app, compat.__main__, agent.__main__\n"
        "for m in (app, agent, compat.flask_app):\n"
        f"    assert m.__file__.startswith({str(ROOT)!r}), m.__file__\n"
        "assert callable(app.create_app) and callable(compat.flask_app.create_app)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=_env()
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
