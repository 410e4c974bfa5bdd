"""Whether the processes a test started have ended: the orphan checks of the pipeline's executors."""
import time


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def assert_all_end(pids, within, what="a child of the pipeline"):
    """Fail unless every process in ``pids`` has ended within ``within`` seconds."""
    deadline = time.time() + within
    while any(alive(pid) for pid in pids):
        assert time.time() < deadline, f"{what} outlived it: {[pid for pid in pids if alive(pid)]}"
        time.sleep(0.1)
