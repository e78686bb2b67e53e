"""`python -m dealreg_intake`: run the intake service until SIGTERM."""

from dealreg_intake.app import SERVICE, build_app
from dealreg_intake.settings import IntakeSettings
from dealreg_shared.runtime import run
from dealreg_shared.settings import load_settings


def main() -> None:
    run(build_app(load_settings(IntakeSettings, SERVICE)))


if __name__ == "__main__":
    main()
