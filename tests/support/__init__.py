"""What the tests share: generated worlds, train.py command lines, fakes, and checks of processes and records."""
