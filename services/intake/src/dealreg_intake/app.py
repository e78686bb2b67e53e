"""Intake's one wiring point, `build_app`: settings and configuration in, subscribers on their topics."""

from __future__ import annotations

from faststream import FastStream

from dealreg_intake.handlers import IntakeHandlers, own_status
from dealreg_intake.settings import IntakeConfig, IntakeSettings
from dealreg_shared.config import load_section_or_exit
from dealreg_shared.regions import parse_regions
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS, REGISTRATIONS_SUBMITTED

SERVICE = "intake"


def build_app(settings: IntakeSettings, config: IntakeConfig | None = None) -> FastStream:
    """`config` defaults to the `[intake]` section of DEALREG_CONFIG_FILE (a bad one stops start-up)."""
    if config is None:
        config = load_section_or_exit(settings.config_file, SERVICE, IntakeConfig, service=SERVICE)
    runtime = ServiceRuntime(service=SERVICE, settings=settings, package="dealreg_intake")
    handlers = IntakeHandlers(config=config, regions=parse_regions(settings.regions))
    runtime.subscribe(
        REGISTRATIONS_SUBMITTED, handlers.on_registration_submitted, run_handler=handlers.on_registrations_submitted
    )
    runtime.subscribe(PARTNERS, handlers.on_partner_event)
    runtime.subscribe(
        REGISTRATION_STATUS,
        handlers.on_registration_status,
        run_handler=handlers.on_registration_statuses,
        skip=own_status,
    )
    return runtime.app()
