"""Where the server's log goes: one text observer behind a level filter.

``make_observer`` builds the observer from ``[log]`` (level and file, or
standard output). ``sipapp.tap`` hands it to twistd as the application's
``ILogObserver``, so it replaces twistd's own default observer instead of
writing every line twice. This module formats and filters; it does not
decide what is logged.
"""

import sys
from typing import IO, cast

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    textFileLogObserver,
)

from sipapp.config import LogConfig


def open_log(path: str | None) -> IO[str]:
    """``path`` opened for appending, line-buffered; standard output for ``None``.

    Raises ``OSError`` when the file cannot be opened.
    """
    if path is None:
        return sys.stdout
    return open(path, "a", encoding="utf-8", buffering=1)


def make_observer(config: LogConfig, default_file: str | None = None) -> ILogObserver:
    """A text-line observer that drops events below ``config.level``.

    Lines go to ``config.file``, else to ``default_file`` (twistd's own
    ``--logfile``), else to standard output. Raises ``OSError`` when the file
    cannot be opened.
    """
    stream = open_log(config.file or default_file)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(config.level))
    # The casts stand for @implementer declarations that mypy cannot see.
    return cast(
        ILogObserver,
        FilteringLogObserver(
            cast(ILogObserver, textFileLogObserver(stream)),
            [cast(ILogFilterPredicate, predicate)],
        ),
    )
