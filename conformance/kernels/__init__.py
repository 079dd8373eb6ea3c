"""`conformance kernels`: the suite on several Linux kernels booted with virtme-ng, and what changed between them.

options.py   the command's options, each checked before anything is fetched or booted
sources.py   what a kernel argument names (an image path, a Debian package, an upstream tag) and where its image is
images.py    whether a file is a kernel image this machine boots, and where a build tree keeps its image
tools.py     the host programs virtme-ng needs, found or named with the packages that provide them
console.py   one process watched to its end: its output logged, its progress read, its deadlines kept, its
             start seen on the output or in a file the guest writes
guest.py     the virtme-ng command line and the command the guest runs
runner.py    all of it in order: host run, each kernel (booted once more if it shows no sign), the matrix, the
             diffs between consecutive kernels
"""
