"""`conformance arch`: the suite on another architecture's Debian kernel and userland, under QEMU's emulation."""
