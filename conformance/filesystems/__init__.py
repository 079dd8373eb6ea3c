"""`conformance filesystems`: the file and lock cases on each filesystem this machine can mount, and what differs.

plans.py     what mounting each filesystem takes: the commands in order, the command that undoes each, the programs
mounting.py  a plan carried out, every step it took undone on every path (a failed step, an interrupt)
options.py   the command's options, each checked before anything is mounted
runner.py    all of it in order: each filesystem mounted, the cases run on it, the matrix, the diffs against ext4
"""
