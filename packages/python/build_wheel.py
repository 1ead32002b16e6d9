"""Writes the sio-emu wheel: the sio_emu package beside this script, the binary as package data
(sio_emu/bin/), a console script `sio-emu` and the pytest11 entry point. Standard library only.

    python3 build_wheel.py --binary target/release/sio-emu --version 0.1.0 --out target/packages
"""

import argparse
import base64
import hashlib
import platform
import re
import sys
import sysconfig
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "sio_emu"

METADATA = """Metadata-Version: 2.1
Name: sio-emu
Version: {version}
Summary: A local emulator of Azure Web PubSub for Socket.IO (Serverless mode): the sio-emu binary, start() for tests and a pytest plugin
Keywords: socket.io,azure,web-pubsub,emulator,testing,pytest
Classifier: Framework :: Pytest
Classifier: Topic :: Software Development :: Testing
Requires-Python: >=3.8
"""

ENTRY_POINTS = """[console_scripts]
sio-emu = sio_emu.__main__:main

[pytest11]
sio_emu = sio_emu.pytest_plugin
"""


def platform_tag(binary: bytes) -> str:
    """The wheel's platform tag: manylinux_2_<N> from the newest glibc symbol version the binary
    needs (no glibc symbols: a plain linux tag), else what this Python reports."""
    plat = sysconfig.get_platform()
    if plat.startswith("linux"):
        machine = platform.machine()
        glibc = [int(minor) for minor in re.findall(rb"GLIBC_2\.(\d+)", binary)]
        if glibc:
            return f"manylinux_2_{max(glibc)}_{machine}"
        return f"linux_{machine}"
    return re.sub(r"[-.]", "_", plat)


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build(binary_path: Path, version: str, out: Path) -> Path:
    binary = binary_path.read_bytes()
    exe = "sio-emu.exe" if binary_path.suffix == ".exe" else "sio-emu"
    tag = f"py3-none-{platform_tag(binary)}"
    dist_info = f"{NAME}-{version}.dist-info"
    files = [(f"{NAME}/{src.name}", src.read_bytes(), 0o644)
             for src in sorted((HERE / NAME).glob("*.py"))]
    files.append((f"{NAME}/bin/{exe}", binary, 0o755))
    files.append((f"{dist_info}/METADATA", METADATA.format(version=version).encode(), 0o644))
    wheel = f"Wheel-Version: 1.0\nGenerator: sio-emu build_wheel.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files.append((f"{dist_info}/WHEEL", wheel.encode(), 0o644))
    files.append((f"{dist_info}/entry_points.txt", ENTRY_POINTS.encode(), 0o644))
    record = [record_line(path, data) for path, data, _ in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))

    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{NAME}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as whl:
        for path, data, mode in files:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            whl.writestr(info, data)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(build(args.binary, args.version, args.out))


if __name__ == "__main__":
    sys.exit(main())
