"""`conformance compat`: the suite in a 32-bit userland on this 64-bit kernel, through the kernel's compat layer.

tools.py    the host programs it needs (debootstrap, chroot, mount), found or named with their packages
mounts.py   the chroot's mounts, made in order and undone on every path, and the processes inside ended first
build.py    the Debian userland, built once into the cache; the suite installed into it from this checkout
runner.py   all of it in order: the runs inside as root and unprivileged, the native run, the matrix and the diff
"""
