"""The static parts of `make compose-test` (tools/compose_test.py), checked without Docker.

The script itself (build, run, push photos, Prometheus, teardown) needs a Docker engine and
~10-20 minutes, so CI does not run it; these checks guard what it relies on.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _load_tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "compose_test", REPO / "tools" / "compose_test.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compose_test"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()


def _instructions(dockerfile: Path) -> list[str]:
    """A Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [
        line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


def test_grafana_provisioning_of_the_repository_is_valid() -> None:
    assert TOOL.validate_grafana(REPO) == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    shutil.copytree(REPO / "deploy" / "grafana", tmp_path / "deploy" / "grafana")
    return tmp_path


def _edit_yaml(path: Path, edit: Any) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))


def _datasource(copy: Path, **changes: str) -> None:
    path = copy / "deploy/grafana/provisioning/datasources/prometheus.yml"
    _edit_yaml(path, lambda d: d["datasources"][0].update(changes))


def test_grafana_validation_finds_a_datasource_on_the_wrong_port(copy: Path) -> None:
    _datasource(copy, url="http://prometheus:9091")
    assert any("port 9091" in p for p in TOOL.validate_grafana(copy))


def test_grafana_validation_finds_a_datasource_on_no_service(copy: Path) -> None:
    _datasource(copy, url="http://metrics:9090")
    assert any("'metrics' is no compose service" in p for p in TOOL.validate_grafana(copy))


def test_grafana_validation_finds_a_broken_dashboard(copy: Path) -> None:
    board = next((copy / "deploy/grafana/dashboards").glob("*.json"))
    board.write_text(board.read_text()[:-20])
    assert any("not JSON" in p for p in TOOL.validate_grafana(copy))


def test_grafana_validation_finds_a_panel_on_an_unknown_datasource(copy: Path) -> None:
    board = next((copy / "deploy/grafana/dashboards").glob("*.json"))
    dashboard = json.loads(board.read_text())
    dashboard["panels"][0]["datasource"]["uid"] = "elsewhere"
    board.write_text(json.dumps(dashboard))
    assert any("'elsewhere'" in p for p in TOOL.validate_grafana(copy))


def test_grafana_validation_finds_an_unmounted_dashboard_folder(copy: Path) -> None:
    def unmount(compose: dict[str, Any]) -> None:
        volumes = compose["services"]["grafana"]["volumes"]
        compose["services"]["grafana"]["volumes"] = [v for v in volumes if "dashboards:" not in v]

    _edit_yaml(copy / "docker-compose.yml", unmount)
    assert any("not mounted" in p for p in TOOL.validate_grafana(copy))


@pytest.mark.parametrize(
    "dockerfile", ["services/encoder/Dockerfile", "services/decoder/Dockerfile"]
)
def test_dockerfiles_take_the_build_arguments_and_the_ca_secret(dockerfile: str) -> None:
    """What the script passes exists, and every pip install can see the CA bundle secret
    without any step copying a certificate into the image."""
    assert {"BASE_IMAGE", "TORCH_PIP", "PIP_EXTRA"} <= TOOL.dockerfile_args(REPO / dockerfile)
    instructions = _instructions(REPO / dockerfile)
    installs = [i for i in instructions if "pip install" in i]
    assert installs
    for instruction in installs:
        assert instruction.startswith("RUN --mount=type=secret,id=pip_ca "), instruction
        assert "$PIP_EXTRA" in instruction, instruction
    assert not [i for i in instructions if re.match(r"(COPY|ADD) .*(\.crt|\.pem|certs)", i)]


def test_compose_services_use_the_images_the_script_builds() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for image, (dockerfile, target) in TOOL.IMAGES.items():
        users = [
            name
            for name, service in compose.items()
            if service.get("build", {}).get("dockerfile") == dockerfile
            and service["build"].get("target") == target
        ]
        assert users, image
        for name in users:
            assert compose[name]["image"] == image, name


def test_the_build_context_leaves_out_the_venv_and_outputs() -> None:
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignored
    kept = {line[1:] for line in ignored if line.startswith("!")}
    for dockerfile in ("services/encoder/Dockerfile", "services/decoder/Dockerfile"):
        for instruction in _instructions(REPO / dockerfile):
            if instruction.startswith("COPY "):
                for source in instruction.split()[1:-1]:
                    assert source in kept, (dockerfile, source)


# The edge image where the PyTorch CPU index cannot be reached: PyPI's torchvision on CPU
# torch, which imports only once semlink's shim (semlink._torchvision) is installed. Played
# here by a finder put first on sys.meta_path of a local Python.
PYPI_TORCHVISION_ON_CPU_TORCH = """
import sys
class _Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" and "semlink._torchvision" not in sys.modules:
            raise ImportError("operator torchvision::nms does not exist")
sys.meta_path.insert(0, _Finder())
"""


def _in_edge_image(image: str, code: str) -> subprocess.CompletedProcess[str]:
    """``in_image`` played by this machine's Python with the edge image's torchvision."""
    return subprocess.run(
        [sys.executable, "-c", PYPI_TORCHVISION_ON_CPU_TORCH + code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_demo_client_check_imports_as_the_demo_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The check that decides whether compose-test runs the demo client container imports
    semlink before torchvision, as `semlink demo` does; a bare `import torchvision` (the old
    check, which left the container out wrongly) fails where the demo runs."""
    from tools.compose import images

    assert images.DEMO_CLIENT_IMPORTS.startswith("import services.cli,")
    assert "import torchvision" not in images.DEMO_CLIENT_IMPORTS
    bare = _in_edge_image("semlink-encoder", "import torchvision")
    assert bare.returncode != 0 and "torchvision::nms" in bare.stderr
    # The demo client itself (the compose file's entrypoint) gets past its imports: it ends
    # on the address it cannot reach, not on torchvision.
    demo = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["demo"]
    assert demo["entrypoint"][:2] == ["semlink", "demo"]
    nowhere = "127.0.0.1:9"
    real = _in_edge_image(
        "semlink-encoder",
        "import sys; from services.script import main; sys.argv = ['semlink', 'demo', "
        f"'--encoder', '{nowhere}', '--via', '{nowhere}', '--decoder', '{nowhere}', "
        "'--wait', '0', '--out', " + repr(str(tmp_path / "demo")) + "]; main()",
    )
    assert real.returncode == 2 and "did not report SERVING" in real.stdout, real
    assert "torchvision" not in real.stdout + real.stderr
    monkeypatch.setattr(images, "in_image", _in_edge_image)
    report = TOOL.Report()
    assert TOOL.demo_client_runs("semlink-encoder", report)
    assert report.notes == []


def test_a_demo_client_that_cannot_import_is_left_out_with_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tools.compose import images

    def broken(image: str, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            [], 1, "", "Traceback ...\nModuleNotFoundError: No module named 'piq'\n"
        )

    monkeypatch.setattr(images, "in_image", broken)
    report = TOOL.Report()
    assert not TOOL.demo_client_runs("semlink-encoder", report)
    assert report.notes == [
        "semlink-encoder: the demo client's imports fail "
        "(ModuleNotFoundError: No module named 'piq'): it is left out"
    ]
