"""Mutation testing of the suite: generated port defects, and the share of them its checks catch.

operators.py  the mistakes porters make, applied at run time to the Paddle side
worker.py     the Paddle process: lists the mutants, runs each through the suite's steps and checker
score.py      the score per operator and per layer, every survivor explained
run.py        python -m alignment.mutation: the unmutated run, the mutants, the report
seams.py      where the loss and loop operators install: what is the pair's own (its `mutant_seams()`)
files.py      what a mutation run checks, and where it writes
"""
