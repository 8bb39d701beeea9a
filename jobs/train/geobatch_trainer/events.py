"""JSON-lines events on stdout (the trainer's only stdout output); human logs on stderr."""

import json
import math
import sys

_out = sys.stdout
_enabled = True

EXIT_CODES = {"config": 2, "data": 2, "weights": 3, "runtime": 1, "memory": 1}


class TrainerError(Exception):
    """A failure the harness maps to a kind and an exit code; the message names the file/field/value."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


class DataError(Exception):
    """A bad dataset file or image. One-argument constructor so DataLoader workers can re-raise it."""


def capture_stdout():
    """Keep the real stdout for events and send anything else printed (libraries) to stderr."""
    global _out
    _out = sys.stdout
    sys.stdout = sys.stderr


def set_enabled(enabled):
    global _enabled
    _enabled = bool(enabled)


def _clean(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def emit(event, **fields):
    if not _enabled:
        return
    line = json.dumps(_clean({"event": event, **fields}), allow_nan=False, separators=(",", ":"))
    _out.write(line + "\n")
    _out.flush()


def log(message):
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
