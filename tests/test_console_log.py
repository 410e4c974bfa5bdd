"""The log tee: stdout and stderr into log.txt, progress bars on the terminal only."""
import io
import sys

from trainers.run.console_log import Tee, progress_bar, setup_logger


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_reach_the_terminal_but_never_the_log(tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    setup_logger(str(tmp_path))
    assert isinstance(sys.stderr, Tee)
    print("a line for the log")
    print("an error line", file=sys.stderr)
    assert list(progress_bar(range(3))) == [0, 1, 2]
    sys.stderr.flush()
    log = (tmp_path / "log.txt").read_text()
    assert "a line for the log" in log and "an error line" in log
    assert "\r" not in log and "3/3" not in log
    assert "3/3" in terminal.getvalue()


def test_no_bar_when_stderr_is_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # e.g. the pipeline's pipeline_output.txt
    assert list(progress_bar(range(2))) == [0, 1]
    assert sys.stderr.getvalue() == ""
