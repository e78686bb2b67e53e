"""`python -m dealreg_notify`: run the notify service until SIGTERM."""

from dealreg_notify.app import SERVICE, build_app
from dealreg_notify.settings import NotifySettings
from dealreg_shared.runtime import run
from dealreg_shared.settings import load_settings


def main() -> None:
    run(build_app(load_settings(NotifySettings, SERVICE)))


if __name__ == "__main__":
    main()
