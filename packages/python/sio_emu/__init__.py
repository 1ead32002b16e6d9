"""sio-emu from Python: the bundled emulator binary, ``start()`` for tests, and a pytest plugin
(the ``sio_emu`` and ``sio_emu_session`` fixtures, the ``sio_emu`` marker)."""

from ._binary import binary_path
from ._emulator import Emulator, ServeError, start

__all__ = ["Emulator", "ServeError", "binary_path", "start"]
