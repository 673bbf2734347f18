"""`python -m autotagger.cli ...`: the same command line as `python function/cli.py ...`."""

from autotagger.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
