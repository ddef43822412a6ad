"""`python -m tracker` is the `xp` command."""
from tracker.cli import main

if __name__ == "__main__":
    main()
