"""`python -m dealreg_vetting`: run the vetting service until SIGTERM."""

from dealreg_shared.runtime import run
from dealreg_shared.settings import load_settings
from dealreg_vetting.app import SERVICE, build_app
from dealreg_vetting.settings import VettingSettings


def main() -> None:
    run(build_app(load_settings(VettingSettings, SERVICE)))


if __name__ == "__main__":
    main()
