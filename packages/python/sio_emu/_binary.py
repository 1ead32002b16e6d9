"""Finds the sio-emu binary: ``SIO_EMU_BINARY``, else the one bundled in this wheel."""

import os
import sys
from pathlib import Path

EXECUTABLE = "sio-emu.exe" if sys.platform == "win32" else "sio-emu"


def binary_path() -> str:
    """The path of the binary this package runs; raises RuntimeError (one line) when missing."""
    override = os.environ.get("SIO_EMU_BINARY")
    if override:
        return override
    bundled = Path(__file__).resolve().parent / "bin" / EXECUTABLE
    if bundled.is_file():
        return str(bundled)
    raise RuntimeError(
        f"sio-emu: no binary for {sys.platform} in this package; build sio-emu from source "
        "(`cargo install --path .` or ./install.sh in a clone of its repository) and set "
        "SIO_EMU_BINARY to the built binary's path"
    )
