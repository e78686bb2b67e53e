"""`python -m dealreg_conflict`: run the conflict service until SIGTERM."""

from dealreg_conflict.app import SERVICE, build_app
from dealreg_conflict.settings import ConflictSettings
from dealreg_shared.runtime import run
from dealreg_shared.settings import load_settings


def main() -> None:
    run(build_app(load_settings(ConflictSettings, SERVICE)))


if __name__ == "__main__":
    main()
