"""Writes copies of the WasmPlugin / TrafficExtension manifests in istio/ (HTTP and NETWORK)
pinned to one module: the `url` replaced and `sha256` set, into an output folder
(build/istio by default), with the rest of the kit beside them, so that
`kubectl apply -k build/istio/` applies what `istio/kustomization.yaml` lists.

    python -m tracejoin_tools.istio.pin --image registry.example.com/tracejoin:0.1.0 --oci-layout build/oci
    python -m tracejoin_tools.istio.pin --image registry.example.com/tracejoin:0.1.0 --digest <sha256 of the image>
    python -m tracejoin_tools.istio.pin --file-url file:///var/local/lib/wasm/tracejoin.wasm --wasm tracejoin.wasm

For an OCI image, sha256 is the digest of the image manifest, which Istio compares with the
manifest it pulls: read from the layout `make oci` wrote and you pushed (--oci-layout, so
it cannot drift from what is in the registry), or the digest `docker push` printed
(--digest). For a file or https url, the sha256 of the module itself (computed from --wasm).
"""

import argparse
import hashlib
import re
import shutil
import sys
from pathlib import Path

from tracejoin_tools.common import ROOT
from tracejoin_tools.istio import oci

HERE = ROOT / "istio"
PLACEHOLDER = "oci://registry.example.com/tracejoin:0.1.0"
MANIFESTS = [
    "wasmplugin-network.yaml",
    "wasmplugin-gateway.yaml",
    "wasmplugin-sidecar.yaml",
    "trafficextension.yaml",
    "ambient/wasmplugin-waypoint.yaml",
    "ambient/wasmplugin-waypoint-egress.yaml",
    "ambient/trafficextension-waypoint.yaml",
]
# The rest of the kit, copied as it is (envoyfilter-upstream.yaml, for deployment 3, reads
# the module from a file mounted into the proxies: no url to pin).
COPIED = [
    "service-entries.yaml",
    "telemetry.yaml",
    "jaeger.yaml",
    "networkpolicy.yaml",
    "envoyfilter-upstream.yaml",
    "kustomization.yaml",
    "ambient/README.md",
    "ambient/envoyfilter-waypoint-upstream.yaml",
    "ambient/kustomization.yaml",
    "ambient/telemetry-egress.yaml",
    "ambient/telemetry-waypoint.yaml",
    "ambient/waypoint-options.yaml",
]


def pin(text, url, sha256):
    def replace(match):
        indent = match.group(1)
        return f"{indent}url: {url}\n{indent}sha256: {sha256}"

    return re.sub(r"^( *)url: " + re.escape(PLACEHOLDER) + r"$", replace, text, flags=re.M)


def split_image(image):
    """(tag, digest) of an image reference; either may be None."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else None
    return tag, digest or None


def layout_digest(layout_dir, image, wasm):
    """The manifest digest (hex) of the layout's image pushed as `image`: the manifest the
    image's tag names in the layout, or the layout's only one."""
    tag, pinned = split_image(image)
    layout = oci.read_layout(Path(layout_dir), tag)
    if pinned and pinned != layout.digest:
        raise oci.LayoutError(f"{image} names digest {pinned}, the layout holds {layout.digest}")
    if tag and layout.tag != tag:
        print(f"pin: {layout_dir} names its image {layout.tag!r}; pinning it as pushed under the tag {tag!r}", file=sys.stderr)
    module = Path(wasm)
    if module.is_file() and module.read_bytes() != layout.module:
        # The manifests point at what was pushed; a rebuilt module is not in the registry.
        print(f"pin: {layout_dir} holds another module than {wasm}: pinning the layout's; run make oci and push again to ship {wasm}", file=sys.stderr)
    return layout.digest.removeprefix("sha256:")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="OCI image reference, e.g. registry.example.com/tracejoin:0.1.0")
    source.add_argument("--file-url", help="file:// or https:// url of the module")
    digest_source = parser.add_mutually_exclusive_group()
    digest_source.add_argument("--oci-layout", help="the OCI image layout pushed as --image (make oci writes build/oci): the digest comes from it")
    digest_source.add_argument("--digest", help="image digest (64 hex, with or without sha256:), e.g. what docker push printed")
    parser.add_argument("--wasm", default="tracejoin.wasm", help="the module: hashed for --file-url, compared with the layout's for --oci-layout")
    parser.add_argument("--out", default="build/istio")
    args = parser.parse_args(argv)
    if args.file_url and (args.oci_layout or args.digest):
        parser.error("--oci-layout and --digest go with --image, not --file-url")
    if args.image:
        image = args.image.removeprefix("oci://")
        if args.oci_layout:
            try:
                digest = layout_digest(args.oci_layout, image, args.wasm)
            except oci.LayoutError as error:
                print(f"pin: {error}", file=sys.stderr)
                return 1
        else:
            digest = (args.digest or "").removeprefix("sha256:")
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                parser.error("--image needs --oci-layout (the layout you pushed) or --digest (the 64-hex image digest docker push printed)")
        url, sha256 = f"oci://{image}", digest
    else:
        url, sha256 = args.file_url, hashlib.sha256(Path(args.wasm).read_bytes()).hexdigest()
    out = Path(args.out)
    (out / "ambient").mkdir(parents=True, exist_ok=True)
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
