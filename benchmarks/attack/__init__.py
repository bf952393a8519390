"""The hostile-user attack table of issue 11 (cases.py) and its runner (run_attack.py)."""
