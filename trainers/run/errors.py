"""How the command-line entry points report a bad input: one or two lines naming the file, key or value.

A bad input is an error the user fixes by changing a command line, a config or a file: a config error, a
missing or unreadable file, a checkpoint of another run, a run directory in use, a diverged run. Anything else
is a bug and keeps its traceback. ``--debug`` (or ``DPC_DEBUG=1``) shows the traceback of bad inputs too.
"""
import os
import re
import signal
import sys

from trainers.run.lock import RunLockedError
from trainers.run.stop_signals import StopRequested, requested

BAD_INPUT_ERRORS = (ValueError, KeyError, OSError, FloatingPointError, RunLockedError)


def wants_traceback(debug_flag=False):
    return debug_flag or os.environ.get("DPC_DEBUG", "") not in ("", "0")


# How torch re-raises, in the main process, an error raised in a data-loader worker: the same type, its message
# after the worker's traceback; and how it reports a worker that died without raising (e.g. the OOM killer).
_WORKER_ERROR = re.compile(r"^Caught (\w+) in DataLoader worker process (\d+)\.\nOriginal Traceback")
_WORKER_DIED = re.compile(r"DataLoader worker \(pid(?:\(s\))? [\d, ]+\) "
                          r"(is killed by signal: [^.]+|exited unexpectedly)")


def message(err):
    text = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
    worker = _WORKER_ERROR.match(text)
    if worker:  # the worker's own message, without its traceback
        name, number = worker.groups()
        lines = text.splitlines()
        last = max((i for i, line in enumerate(lines) if re.match(rf"(?:[\w.]+\.)?{name}: ", line)), default=None)
        if last is not None:
            text = "\n".join(lines[last:]).split(": ", 1)[1] + f" (in data-loader worker {number})"
    return " ".join(text.split()) or type(err).__name__


def worker_death(err):
    """The one line for a data-loader worker that died without raising, or "" when ``err`` is not that."""
    died = _WORKER_DIED.search(str(err)) if isinstance(err, RuntimeError) else None
    if not died:
        return ""
    how = died.group(1).replace("is killed", "was killed")
    return (f"a data-loader worker {how} (out of memory, or killed from outside); run the same "
            "command again to resume, with fewer DATALOADER.NUM_WORKERS if memory is short")


def run_reporting_bad_input(fn, debug=False, program="train.py"):
    """``fn()``'s exit status; a bad input prints ``<program>: error: ...`` and gives 2."""
    try:
        status = fn()
    except StopRequested as err:
        return _stopped(program, err.signum)
    except BAD_INPUT_ERRORS as err:
        if requested() is not None:  # e.g. a data worker ended by the same signal first
            return _stopped(program, requested())
        if wants_traceback(debug):
            raise
        print(f"{program}: error: {message(err)}", file=sys.stderr)
        print(f"{program}: (rerun with --debug or DPC_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{program}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as err:
        if requested() is not None:
            return _stopped(program, requested())
        if worker_death(err) and not wants_traceback(debug):
            print(f"{program}: error: {worker_death(err)}", file=sys.stderr)
            print(f"{program}: (rerun with --debug or DPC_DEBUG=1 for the traceback)", file=sys.stderr)
            return 2
        raise
    return status if isinstance(status, int) else 0


def _stopped(program, signum):
    name = signal.Signals(signum).name
    print(f"\n{program}: stopped by {name}; the last complete checkpoint is kept: run the same command again to "
          "resume", file=sys.stderr)
    return 128 + signum
