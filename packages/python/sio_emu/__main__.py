"""``sio-emu …`` (the console script) and ``python -m sio_emu …``: runs the bundled binary.

On POSIX the binary replaces this process, so its exit code and signals are the command's own.
"""

import os
import subprocess
import sys

from ._binary import binary_path


def main() -> None:
    try:
        binary = binary_path()
    except RuntimeError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    argv = [binary, *sys.argv[1:]]
    if os.name == "posix":
        try:
            os.execv(binary, argv)
        except OSError as error:
            print(f"sio-emu: cannot run {binary}: {error.strerror}", file=sys.stderr)
            sys.exit(127 if isinstance(error, FileNotFoundError) else 126)
    try:
        sys.exit(subprocess.call(argv))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
