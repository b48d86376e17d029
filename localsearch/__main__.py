import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["host"]:
        # The native-messaging host: stdout carries frames only. Keep it for them before anything
        # is imported (a plugin that prints when it loads would break the browser's channel), and
        # send every other write to fd 1 to stderr. `localsearch host` picks the kept fd up.
        os.environ["_LOCALSEARCH_HOST_FRAMES_FD"] = str(os.dup(sys.stdout.fileno()))
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    from .cli import cli

    cli()


if __name__ == "__main__":
    main()
