"""`python function/cli.py ...`: the command line, kept where the docs say; the code is the
package `autotagger.cli` (also `python -m autotagger.cli` and the `autotagger` script)."""

from autotagger.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
