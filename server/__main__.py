"""``python -m server`` / ``styletransfer-server``: parse flags and environment, configure logging, serve."""

from __future__ import annotations

import logging
import sys

from server.config import MIB, ConfigError, load_config
from server.logs import configure_logging
from server.malloc import retain_freed_memory


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_format, config.log_level)
    # Before torch is imported: glibc fixes its arena limit when a second thread first allocates.
    tuning = retain_freed_memory(config.retain_memory_mb * MIB)
    logging.getLogger("server").debug("malloc: %s", tuning)
    from server.app import run

    return run(config)


if __name__ == "__main__":
    raise SystemExit(main())
