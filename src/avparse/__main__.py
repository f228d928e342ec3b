"""``python -m avparse`` (and ``torchrun -m avparse train ...``) runs the CLI."""

from avparse.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
