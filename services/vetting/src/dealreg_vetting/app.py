"""Vetting's one wiring point, `build_app`: its configuration, its subscribers, the shared runtime."""

from __future__ import annotations

from faststream import FastStream

from dealreg_shared.config import load_section_or_exit
from dealreg_shared.regions import parse_regions
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.topics import PARTNER_APPLICATIONS, PARTNER_DECISIONS, REGISTRATIONS_RECEIVED
from dealreg_vetting.applications import Onboarding
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.maillists import mail_domains
from dealreg_vetting.registrations import Eligibility
from dealreg_vetting.settings import VettingSettings

SERVICE = "vetting"


def build_app(settings: VettingSettings) -> FastStream:
    config = load_section_or_exit(settings.config_file, SERVICE, VettingConfig, service=SERVICE)
    mail_domains(config.mail_lists)  # load the lists now: a broken install fails at start, not on a record
    runtime = ServiceRuntime(service=SERVICE, settings=settings, package="dealreg_vetting")
    onboarding = Onboarding(config, parse_regions(settings.regions))
    eligibility = Eligibility(config)
    runtime.subscribe(PARTNER_APPLICATIONS, onboarding.on_partner_application)
    runtime.subscribe(PARTNER_DECISIONS, onboarding.on_partner_decision)
    runtime.subscribe(
        REGISTRATIONS_RECEIVED, eligibility.on_registration_received, run_handler=eligibility.on_registrations_received
    )
    return runtime.app()
