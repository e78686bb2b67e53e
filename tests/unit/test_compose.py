"""What docker-compose.yml and deploy/docker/Dockerfile promise that can be checked without a Docker engine."""

from __future__ import annotations

import glob
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from dealreg_conflict.settings import ConflictSettings
from dealreg_devstack.provision import SERVICES
from dealreg_devstack.stack import from_environment
from dealreg_intake.settings import IntakeSettings
from dealreg_notify.settings import NotifySettings
from dealreg_shared.settings import ServiceSettings
from dealreg_vetting.settings import VettingSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"

APP_SERVICES: tuple[str, ...] = SERVICES  # the services setup provisions a role and a schema for
SETTINGS_CLASSES: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "vetting": VettingSettings,
    "conflict": ConflictSettings,
    "notify": NotifySettings,
}
SETUP_PACKAGE = "devstack"
# what `python -m dealreg_devstack provision` reads (dealreg_devstack.stack and .provision)
SETUP_VARIABLES = frozenset(
    {"DEALREG_KAFKA_BOOTSTRAP", "DEALREG_ADMIN_DATABASE_URL"}
    | {f"DEALREG_{service.upper()}_DB_PASSWORD" for service in SERVICES}
)

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `$$`, `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR-default}`; anything else is an error."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["bare"]:
            return env.get(match["bare"], "")
        name = match["braced"]
        if name is None:
            raise ValueError(f"interpolation this test does not understand in {value!r}")
        if match["op"] == ":-":
            return env.get(name) or match["default"]
        if match["op"] == "-":
            return env.get(name, match["default"])
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def environment(service: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A service's `environment` (list or mapping form), interpolated; variables passed through are left out."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    result: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        assert not isinstance(value, bool), f"{name}: compose wants booleans quoted"
        result[name] = interpolate(str(value), env or {})
    return result


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


def workspace_members() -> list[Path]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: list[Path] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += [Path(p) for p in sorted(glob.glob(str(ROOT / pattern))) if (Path(p) / "pyproject.toml").is_file()]
    return members


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No DEALREG_* from the shell running the tests: only what compose sets counts."""
    for name in list(os.environ):
        if name.startswith("DEALREG_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_compose_file_parses_into_a_mapping_of_services(compose: dict[str, Any]) -> None:
    assert isinstance(compose.get("services"), dict)
    assert all(isinstance(body, dict) for body in compose["services"].values())


def test_compose_defines_kafka_postgres_setup_and_every_app_service(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "postgres", "setup", "intake", "vetting", "conflict", "notify"} <= set(services)
    assert set(APP_SERVICES) <= set(services), "every service setup provisions must run in compose"
    assert set(SETTINGS_CLASSES) == set(APP_SERVICES)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_has_no_container_name_or_host_ports_so_it_can_scale(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert "container_name" not in services[name]
    assert "ports" not in services[name]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_kafka_and_postgres_and_a_completed_setup(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), "long form needed to state conditions"
    assert depends_on["kafka"]["condition"] == "service_healthy"
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["setup"]["condition"] == "service_completed_successfully"


def test_setup_waits_for_healthy_kafka_and_postgres_and_is_not_restarted(services: dict[str, dict[str, Any]]) -> None:
    setup = services["setup"]
    assert setup["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert setup["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert setup.get("restart") == "no"


@pytest.mark.parametrize("name", ["kafka", "postgres", *APP_SERVICES])
def test_service_has_an_enabled_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    healthcheck = services[name].get("healthcheck")
    assert isinstance(healthcheck, dict)
    assert not healthcheck.get("disable", False)
    assert healthcheck.get("test")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_healthcheck_probes_readyz_on_the_configured_health_port(
    services: dict[str, dict[str, Any]], name: str, clean_environ: pytest.MonkeyPatch
) -> None:
    for variable, value in environment(services[name]).items():
        clean_environ.setenv(variable, value)
    port = SETTINGS_CLASSES[name]().health_port
    test = services[name]["healthcheck"]["test"]
    command = " ".join(test) if isinstance(test, list) else test
    assert f"127.0.0.1:{port}/readyz" in command


@pytest.mark.parametrize("name", ["setup", *APP_SERVICES])
def test_build_context_and_dockerfile_exist_in_the_repo(services: dict[str, dict[str, Any]], name: str) -> None:
    build = services[name]["build"]
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context.is_dir()
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()


@pytest.mark.parametrize("name", ["setup", *APP_SERVICES])
def test_service_build_arg_names_a_service_directory_or_devstack(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    package = services[name]["build"]["args"]["SERVICE"]
    assert package == SETUP_PACKAGE or (ROOT / "services" / package / "pyproject.toml").is_file()


def test_each_app_service_builds_its_own_package_and_setup_builds_devstack(
    services: dict[str, dict[str, Any]],
) -> None:
    built = {name: services[name]["build"]["args"]["SERVICE"] for name in ("setup", *APP_SERVICES)}
    assert built == {"setup": SETUP_PACKAGE, **{name: name for name in APP_SERVICES}}


def test_dockerfile_final_stage_runs_as_a_non_root_user() -> None:
    users = [
        arguments
        for keyword, arguments in final_stage(dockerfile_instructions(DOCKERFILE.read_text()))
        if keyword == "USER"
    ]
    assert users, "no USER in the final stage: the container would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in {"root", "0", ""}


def test_dockerfile_copies_every_workspace_members_manifest_and_sources() -> None:
    """uv resolves the workspace from every member's pyproject.toml: a member the image lacks breaks `uv sync`."""
    copied = " ".join(
        arguments for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()) if keyword == "COPY"
    )
    for member in workspace_members():
        relative = member.relative_to(ROOT).as_posix()
        assert f"{relative}/pyproject.toml" in copied
        assert f"{relative}/src" in copied


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_dealreg_variable_in_compose_is_a_field_of_the_service_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    settings_class = SETTINGS_CLASSES[name]
    assert issubclass(settings_class, ServiceSettings)
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    known = {(prefix + field).upper() for field in settings_class.model_fields}
    assert prefix.upper() == "DEALREG_"
    set_in_compose = {variable for variable in environment(services[name]) if variable.startswith("DEALREG_")}
    assert set_in_compose, "an app service without DEALREG_* settings would run against the loopback defaults"
    assert set_in_compose <= known, f"not settings of {settings_class.__name__}: {sorted(set_in_compose - known)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_values_pass_the_service_settings_validation(
    services: dict[str, dict[str, Any]], name: str, clean_environ: pytest.MonkeyPatch
) -> None:
    variables = environment(services[name])
    for variable, value in variables.items():
        clean_environ.setenv(variable, value)
    settings = SETTINGS_CLASSES[name]()
    assert settings.database_url == variables["DEALREG_DATABASE_URL"]


def test_setup_sets_only_variables_provision_reads(services: dict[str, dict[str, Any]]) -> None:
    set_in_compose = {v for v in environment(services["setup"]) if v.startswith("DEALREG_")}
    assert set_in_compose <= SETUP_VARIABLES, sorted(set_in_compose - SETUP_VARIABLES)


@pytest.mark.parametrize(
    "shell_env",
    [{}, {f"DEALREG_{service.upper()}_DB_PASSWORD": f"pw-of-{service}" for service in SERVICES}],
    ids=["defaults", "overridden"],
)
def test_app_service_connects_as_the_role_and_password_setup_provisions(
    services: dict[str, dict[str, Any]], shell_env: dict[str, str], clean_environ: pytest.MonkeyPatch
) -> None:
    for variable, value in environment(services["setup"], shell_env).items():
        clean_environ.setenv(variable, value)
    stack = from_environment()
    assert stack is not None, "setup lacks DEALREG_KAFKA_BOOTSTRAP or DEALREG_ADMIN_DATABASE_URL"
    for name in APP_SERVICES:
        app_env = environment(services[name], shell_env)
        assert app_env["DEALREG_DATABASE_URL"] == stack.service_dsn(name)
        assert app_env["DEALREG_KAFKA_BOOTSTRAP"] == stack.kafka_bootstrap


def test_setup_connects_as_the_superuser_postgres_creates(services: dict[str, dict[str, Any]]) -> None:
    postgres = environment(services["postgres"])
    admin_url = environment(services["setup"])["DEALREG_ADMIN_DATABASE_URL"]
    assert admin_url.startswith(
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/"
    )


def test_kafka_advertises_the_bootstrap_address_services_use_and_does_not_auto_create_topics(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = environment(services["kafka"])
    advertised = {listener.split("://", 1)[1] for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for name in ("setup", *APP_SERVICES):
        assert environment(services[name])["DEALREG_KAFKA_BOOTSTRAP"] in advertised
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
