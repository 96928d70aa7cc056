"""A release of tracejoin for Istio, in one folder: the OCI image layout of the module tagged
VERSION, and the Istio kit with every WasmPlugin and TrafficExtension pinned to that image
(url and the manifest's sha256), so that after pushing the layout

    kubectl apply -k OUT/istio/overlays/default     (or two-namespaces, upstream, OUT/istio)

applies exactly what was built. `make release VERSION=x.y.z [IMAGE=registry/repo]` runs

    python -m tracejoin_tools.istio.release --version x.y.z --image registry/repo --out build/release/x.y.z

VERSION must be Cargo.toml's `version`: the image's version annotation and the module come
from the crate, so a release under another number would mislabel it.
"""

import argparse
import shutil
import sys
from pathlib import Path

from tracejoin_tools.istio import oci, pin

DEFAULT_IMAGE = "registry.example.com/tracejoin"


def release(version, image, wasm, out):
    """Writes OUT/oci, OUT/istio and OUT/tracejoin.wasm; (image reference, digest)."""
    crate = oci.crate_version()
    if version != crate:
        raise ValueError(f"VERSION {version} is not Cargo.toml's version {crate}: bump Cargo.toml first")
    image = image.removeprefix("oci://")
    if "@" in image or ":" in image.rsplit("/", 1)[-1]:
        raise ValueError(f"{image}: name the repository only; the tag is the version ({version})")
    module = Path(wasm).read_bytes()
    out = Path(out)
    layout = oci.build(module, version, crate)
    oci.write(layout, out / "oci")
    checked = oci.read_layout(out / "oci", version)
    reference = f"{image}:{version}"
    digest = checked.digest.removeprefix("sha256:")
    if not pin.pin_tree(out / "istio", f"oci://{reference}", digest):
        raise ValueError(f"no `url: {pin.PLACEHOLDER}` to pin in {pin.HERE}")
    # The module itself, for the file-mounted EnvoyFilters (components/upstream):
    # `kubectl create configmap tracejoin-wasm --from-file=tracejoin.wasm`.
    shutil.copy(wasm, out / "tracejoin.wasm")
    return reference, checked.digest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the release's version: Cargo.toml's, e.g. 0.1.0")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"the repository the image is pushed to, without tag (default {DEFAULT_IMAGE})")
    parser.add_argument("--wasm", default="tracejoin.wasm")
    parser.add_argument("--out", help="default: build/release/VERSION")
    args = parser.parse_args(argv)
    out = Path(args.out or f"build/release/{args.version}")
    try:
        reference, digest = release(args.version, args.image, args.wasm, out)
    except (ValueError, oci.LayoutError, pin.PinError, OSError) as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out}/: oci/ (tag {args.version}, manifest {digest}), istio/ pinned to oci://{reference}, tracejoin.wasm")
    print("push the image, then apply an overlay:")
    print(f"  skopeo copy --preserve-digests oci:{out}/oci:{args.version} docker://{reference}")
    print(f"  kubectl apply -k {out}/istio/overlays/default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
