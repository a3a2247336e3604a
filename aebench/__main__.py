"""`python -m aebench ...`: the `aebench` command where its entry point is not installed (a
machine that only has the source tree on PYTHONPATH)."""

from aebench.cli import main

if __name__ == "__main__":
    main()
