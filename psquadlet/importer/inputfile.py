"""Reading the files an import names: regular files only, of a bounded size, as UTF-8 text.

A compose file or ``.env`` file is a few kilobytes; the cap keeps ``/dev/zero`` or a huge file
from filling memory (and bounds the time YAML parsing takes), and opening without blocking
keeps a FIFO from hanging the import.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from psquadlet.importer.draft import ImportInputError

MAX_INPUT_BYTES = 256 << 10
"""The largest file (and standard input) an import reads: 256 KiB."""


def read_text(path: str, *, missing_ok: bool = False) -> str | None:
    """The text of ``path``; None when it is missing and ``missing_ok``.

    Raises ImportInputError, naming the path, for anything else that keeps it from being read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ImportInputError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportInputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ImportInputError(f"{path}: not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_INPUT_BYTES:
            chunk = os.read(fd, MAX_INPUT_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ImportInputError(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return decode(b"".join(chunks), path)


def read_stream(stream: BinaryIO, where: str) -> str:
    """At most MAX_INPUT_BYTES of ``stream`` (standard input) as text."""
    return decode(stream.read(MAX_INPUT_BYTES + 1), where)


def decode(data: bytes, where: str) -> str:
    """``data`` as text, refused beyond MAX_INPUT_BYTES or when it is not UTF-8."""
    if len(data) > MAX_INPUT_BYTES:
        raise ImportInputError(f"{where}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportInputError(f"{where}: not UTF-8 text (byte {exc.start})") from None
