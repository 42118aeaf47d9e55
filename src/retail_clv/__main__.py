"""Allow ``python -m retail_clv``."""

from retail_clv.cli import main

main()
