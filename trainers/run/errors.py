"""How the command-line entry points report a bad input: one or two lines naming the file, key or value.

A bad input is an error the user fixes by changing a command line, a config or a file: a config error, a
missing or unreadable file, a checkpoint of another run, a run directory in use, a diverged run. Anything else
is a bug and keeps its traceback. ``--debug`` (or ``DPC_DEBUG=1``) shows the traceback of bad inputs too.
"""
import os
import signal
import sys

from trainers.run.lock import RunLockedError
from trainers.run.stop_signals import StopRequested, requested

BAD_INPUT_ERRORS = (ValueError, KeyError, OSError, FloatingPointError, RunLockedError)


def wants_traceback(debug_flag=False):
    return debug_flag or os.environ.get("DPC_DEBUG", "") not in ("", "0")


def message(err):
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(text).split()) or type(err).__name__


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
    except Exception:
        if requested() is not None:
            return _stopped(program, requested())
        raise
    return status if isinstance(status, int) else 0


def _stopped(program, signum):
    name = signal.Signals(signum).name
    print(f"\n{program}: stopped by {name}; the last complete checkpoint is kept: run the same command again to "
          "resume", file=sys.stderr)
    return 128 + signum
