"""python -m devrun: the whole stack on this machine (``make run``); see devrun/runner.py."""

from devrun.runner import main

main()
