"""Send logging, stdout and stderr of a pipeline script to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging

__all__ = ["log_to"]


@contextlib.contextmanager
def log_to(path: str):
    """Everything the block logs or prints goes to `path`; exceptions are logged, then re-raised."""
    with open(path, "w", buffering=1) as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            logging.getLogger("dyndnn").exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
