"""Whether a file is a kernel image this machine's QEMU can boot, and where a kernel build tree keeps its image:
checked before anything boots, so that a wrong path is one line, not a guest that never starts.

Each format is known by a magic number at a fixed offset: Linux's x86 boot protocol header ("HdrS" at 0x202,
Documentation/arch/x86/boot.rst), the arm64 Image header ("ARM\\x64" at 0x38, Documentation/arch/arm64/booting.rst),
an EFI (PE) image such as arm64's EFI zboot ("MZ"), a gzip-compressed Image, and an ELF vmlinux (QEMU boots one
through its PVH note). virtme-ng unpacks what QEMU cannot take directly.
"""

from __future__ import annotations

import os
import platform

from ..files import FileProblem, read_head

# machine -> (format name, offset, magic), the formats its QEMU boots with -kernel.
FORMATS = {
    "x86_64": (("an x86 bzImage", 0x202, b"HdrS"), ("an ELF vmlinux", 0, b"\x7fELF")),
    "aarch64": (("an arm64 Image", 0x38, b"ARM\x64"), ("an EFI image", 0, b"MZ"),
                ("a gzip-compressed Image", 0, b"\x1f\x8b")),
}
# Where a build tree keeps the image virtme-ng boots (its architectures.py kimg_path); it also needs the .config.
BUILD_TREE_IMAGE = {"x86_64": "arch/x86/boot/bzImage", "aarch64": "arch/arm64/boot/Image"}
_HEAD = max(offset + len(magic) for formats in FORMATS.values() for _, offset, magic in formats)


def image_problem(path: str, machine: str | None = None) -> str:
    """Why the file at ``path`` is not a kernel image this machine boots, or "" if it is one."""
    formats = FORMATS.get(machine or platform.machine())
    try:
        head = read_head(path, _HEAD)
    except FileProblem as e:
        return str(e)
    if formats is None:
        return ""  # a machine without a known QEMU: tools.find_tools says so
    if any(head[offset:offset + len(magic)] == magic for _, offset, magic in formats):
        return ""
    names = [name for name, _, _ in formats]
    return f"not a kernel image ({', '.join(names[:-1])} or {names[-1]})"


def build_tree_problem(path: str, machine: str | None = None) -> str:
    """Why the directory ``path`` is not a kernel build tree virtme-ng can boot, or "" if it is one."""
    image = BUILD_TREE_IMAGE.get(machine or platform.machine())
    if image is None:
        return ""
    if not os.path.isfile(os.path.join(path, ".config")):
        return "a directory, but not a kernel build tree (it has no .config)"
    problem = image_problem(os.path.join(path, image), machine)
    return f"a kernel build tree without a bootable {image}: {problem}" if problem else ""
