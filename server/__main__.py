"""``python -m server`` / ``styletransfer-server``: parse flags and environment, configure logging, serve."""

from __future__ import annotations

import sys

from server.app import run
from server.config import ConfigError, load_config
from server.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_format, config.log_level)
    return run(config)


if __name__ == "__main__":
    raise SystemExit(main())
