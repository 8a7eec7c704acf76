"""Re-pack the console's vendored d3-force (and its three dependencies) from the npm registry: `make vendor-console`.

Only when upgrading: the files are committed under `src/memserver/console/static/vendor/d3/`, unmodified, with
each package's LICENSE (ISC asks for the notice) and `VENDORED.json` (package, version, the tarball's integrity,
the sha256 of each file), which `tests/console/test_console_static.py` recomputes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from harness import ROOT

VENDOR = ROOT / "src" / "memserver" / "console" / "static" / "vendor" / "d3"
# d3-force 3.0.1 depends on d3-dispatch, d3-quadtree and d3-timer "1 - 3"; the UMD builds set `globalThis.d3`.
PACKAGES = {"d3-dispatch": "3.0.1", "d3-quadtree": "3.0.1", "d3-timer": "3.0.1", "d3-force": "3.0.1"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
        out = subprocess.run(["npm", "pack", *specs, "--json"], cwd=tmp, check=True, capture_output=True, text=True)
        packed = {p["name"]: p for p in json.loads(out.stdout)}
        for name, version in PACKAGES.items():
            info = packed[name]
            with tarfile.open(Path(tmp) / info["filename"]) as tar:
                minified = tar.extractfile(f"package/dist/{name}.min.js")
                notice = tar.extractfile("package/LICENSE")
                assert minified is not None, name
                assert notice is not None, name
                (VENDOR / f"{name}.min.js").write_bytes(minified.read())
                (VENDOR / f"LICENSE-{name}").write_bytes(notice.read())
            files = [f"{name}.min.js", f"LICENSE-{name}"]
            manifest.append(
                {
                    "package": name,
                    "version": version,
                    "license": "ISC",
                    "integrity": info["integrity"],
                    "files": {f: sha256(VENDOR / f) for f in files},
                }
            )
    (VENDOR / "VENDORED.json").write_text(json.dumps(manifest, indent=2) + "\n")
    sys.stderr.write(f"vendored {', '.join(PACKAGES)} into {VENDOR.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
