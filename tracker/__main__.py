"""`python -m tracker` is the `xp` command."""

from tracker.cli import entry_point

if __name__ == "__main__":
    entry_point()
