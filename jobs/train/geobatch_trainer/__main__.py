"""Entry point: `python3 -m geobatch_trainer --config <config.json>` or `--check` (see ../PROTOCOL.md)."""

import argparse
import os
import platform
import sys
import traceback

from . import events
from .events import EXIT_CODES, DataError, TrainerError, emit, log


def _check():
    import torch
    import torchvision

    cuda = bool(torch.cuda.is_available())
    emit(
        "env",
        python=platform.python_version(),
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        cuda=cuda,
        gpus=torch.cuda.device_count() if cuda else 0,
    )
    return 0


def _data_message(e):
    """A DataError re-raised by a DataLoader worker carries the worker's traceback: keep the message."""
    text = str(e).strip()
    if "Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split("DataError: ", 1)[-1]
    return text


def _is_oom(e):
    text = str(e)
    return type(e).__name__ == "OutOfMemoryError" or "out of memory" in text or "can't allocate memory" in text


def main(argv=None):
    events.capture_stdout()
    events.set_enabled(os.environ.get("RANK", "0") == "0")  # under torch.distributed.run only rank 0 speaks
    parser = argparse.ArgumentParser(
        prog="python3 -m geobatch_trainer",
        description="geobatch's PyTorch trainer: events as JSON lines on stdout, logs on stderr.",
    )
    parser.add_argument("--config", help="path of the trainer config.json (see jobs/train/PROTOCOL.md)")
    parser.add_argument("--check", action="store_true", help="print the environment (python, torch, GPUs) and exit")
    args = parser.parse_args(argv)
    if args.check:
        return _check()
    if not args.config:
        emit("error", kind="config", message="--config <config.json> is required (or --check)")
        return EXIT_CODES["config"]
    cfg = None
    try:
        from . import config, train

        cfg = config.load(args.config)
        return train.run(cfg)
    except TrainerError as e:
        kind, message = e.kind, e.message
    except DataError as e:
        kind, message = "data", _data_message(e)
    except MemoryError as e:
        kind, message = "memory", f"out of memory ({e})"
    except KeyboardInterrupt:
        kind, message = "runtime", "interrupted"
    except Exception as e:  # anything else is a runtime failure, with its traceback on stderr
        log(traceback.format_exc())
        kind = "memory" if _is_oom(e) else "runtime"
        message = f"{type(e).__name__}: {e}".strip()
        if kind == "memory" and cfg:
            message += f" (lower 'batchSize' = {cfg['batchSize']} or 'imageSize' = {cfg['imageSize']})"
    emit("error", kind=kind, message=message)
    log(f"geobatch_trainer: {kind} error: {message}")
    return EXIT_CODES.get(kind, 1)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
