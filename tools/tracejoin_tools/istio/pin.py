"""Writes copies of the WasmPlugin / TrafficExtension manifests in istio/ (HTTP and NETWORK)
pinned to one module: the `url` replaced and `sha256` set, into an output folder
(build/istio by default), with the rest of the kit beside them, so that
`kubectl apply -k build/istio/` applies what `istio/kustomization.yaml` lists.

    python -m tracejoin_tools.istio.pin --image registry.example.com/tracejoin:0.1.0 --digest <sha256 of the image>
    python -m tracejoin_tools.istio.pin --file-url file:///var/local/lib/wasm/tracejoin.wasm --wasm tracejoin.wasm

For an OCI image, sha256 is the image digest `docker push` printed; for a file or https
url, the sha256 of the module itself (computed from --wasm).
"""

import argparse
import hashlib
import re
import shutil
import sys
from pathlib import Path

from tracejoin_tools.common import ROOT

HERE = ROOT / "istio"
PLACEHOLDER = "oci://registry.example.com/tracejoin:0.1.0"
MANIFESTS = ["wasmplugin-network.yaml", "wasmplugin-gateway.yaml", "wasmplugin-sidecar.yaml", "trafficextension.yaml"]
# The rest of the kit, copied as it is (envoyfilter-upstream.yaml, for deployment 3, reads
# the module from a file mounted into the proxies: no url to pin).
COPIED = ["service-entries.yaml", "telemetry.yaml", "jaeger.yaml", "networkpolicy.yaml", "envoyfilter-upstream.yaml", "kustomization.yaml"]


def pin(text, url, sha256):
    def replace(match):
        indent = match.group(1)
        return f"{indent}url: {url}\n{indent}sha256: {sha256}"

    return re.sub(r"^( *)url: " + re.escape(PLACEHOLDER) + r"$", replace, text, flags=re.M)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="OCI image reference, e.g. registry.example.com/tracejoin:0.1.0")
    source.add_argument("--file-url", help="file:// or https:// url of the module")
    parser.add_argument("--digest", help="image digest (64 hex, with or without sha256:)")
    parser.add_argument("--wasm", default="tracejoin.wasm", help="the module, for --file-url")
    parser.add_argument("--out", default="build/istio")
    args = parser.parse_args(argv)
    if args.image:
        digest = (args.digest or "").removeprefix("sha256:")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            parser.error("--image needs --digest: the 64-hex image digest docker push printed")
        url, sha256 = f"oci://{args.image.removeprefix('oci://')}", digest
    else:
        url, sha256 = args.file_url, hashlib.sha256(Path(args.wasm).read_bytes()).hexdigest()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in MANIFESTS:
        text = (HERE / name).read_text()
        pinned = pin(text, url, sha256)
        if pinned == text:
            print(f"{name}: no `url: {PLACEHOLDER}` to pin", file=sys.stderr)
            return 1
        (out / name).write_text(pinned)
    for name in COPIED:
        shutil.copy(HERE / name, out / name)
    print(f"pinned {url} (sha256 {sha256}) into {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
