"""The fault layer and `conformance mutants`: the suite shows that its cases fail when the platform lies.

layer.c      the C library preloaded into the suite's processes; $CONFORMANCE_FAULT chooses the lie
layer.py     builds it at run time, loads it, checks that the interpreter's calls go through it
catalogue.py every fault: what it breaks, the reference, the areas that should notice
runner.py    the control run and one run per fault, several at a time
killmatrix.py what the runs mean: cases turned red per fault, score per area, blind spots
command.py   `conformance mutants`
"""

NOT_MEASURED = 3  # exit status of `conformance mutants`: the layer cannot be loaded here, so nothing was measured
