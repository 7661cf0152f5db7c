import sys

from taco_eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
