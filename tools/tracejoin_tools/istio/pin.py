"""Writes a copy of the Istio kit in istio/ (base, components, overlays, extras, ambient) with
every WasmPlugin and TrafficExtension (HTTP and NETWORK) pinned to one module: the `url`
replaced and `sha256` set, into an output folder (build/istio by default), so that
`kubectl apply -k build/istio/` applies what `kubectl apply -k istio/` would, pinned, and
`kubectl apply -k build/istio/overlays/NAME` each overlay.

    python -m tracejoin_tools.istio.pin --image registry.example.com/tracejoin:0.1.0 --oci-layout build/oci
    python -m tracejoin_tools.istio.pin --image registry.example.com/tracejoin:0.1.0 --digest <sha256 of the image>
    python -m tracejoin_tools.istio.pin --file-url file:///var/local/lib/wasm/tracejoin.wasm --wasm tracejoin.wasm

For an OCI image, sha256 is the digest of the image manifest, which Istio compares with the
manifest it pulls: read from the layout `make oci` wrote and you pushed (--oci-layout, so
it cannot drift from what is in the registry), or the digest `docker push` printed
(--digest). For a file or https url, the sha256 of the module itself (computed from --wasm).

The output folder must be new, empty, or an earlier copy (it holds `.tracejoin-pinned`, which
every copy gets): that one is replaced whole. Anything else, the kit's own folder included,
is refused, never deleted.
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
# Not copied: the vendored CRDs (the tests' schemas, not something to apply) and the Dockerfile.
SKIPPED = ("crds", "Dockerfile")
# Written into every copy: the mark that lets a later run replace the folder. A folder without
# it (the kit itself, anything else) is never deleted.
MARKER = ".tracejoin-pinned"


class PinError(Exception):
    pass


def clear(out, root=HERE):
    """Makes `out` ready for a fresh copy: removes an earlier copy (a folder holding MARKER),
    accepts a missing or empty folder, and refuses anything else, the kit's own folder, one
    inside it or one holding it included."""
    out, kit = Path(out).resolve(), Path(root).resolve()
    if out == kit or kit in out.parents or out in kit.parents:
        raise PinError(f"{out}: the output would overwrite the kit in {kit}; pick a folder outside it")
    if not out.exists():
        return
    if not out.is_dir():
        raise PinError(f"{out} exists and is not a folder")
    if (out / MARKER).is_file():
        # An earlier copy: files the kit has since moved or dropped must not linger in it.
        shutil.rmtree(out)
    elif any(out.iterdir()):
        raise PinError(f"{out} is not empty and holds no {MARKER} (it was not written by this tool): not replacing it; remove it or pick another --out")


def kit_files(root=HERE):
    """The kit's files relative to istio/: kustomizations, manifests, READMEs, patches."""
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in SKIPPED
    )


def pin(text, url, sha256):
    def replace(match):
        indent = match.group(1)
        return f"{indent}url: {url}\n{indent}sha256: {sha256}"

    return re.sub(r"^( *)url: " + re.escape(PLACEHOLDER) + r"$", replace, text, flags=re.M)


def pin_tree(out, url, sha256, root=HERE):
    """Copies the kit into `out`, every `url: PLACEHOLDER` line pinned; the pinned files.
    Raises PinError rather than replace a folder it did not write (clear)."""
    out = Path(out)
    clear(out, root)
    pinned = []
    for name in kit_files(root):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.suffix == ".yaml":
            text = (root / name).read_text()
            new = pin(text, url, sha256)
            target.write_text(new)
            if new != text:
                pinned.append(name)
        else:
            shutil.copy(root / name, target)
    (out / MARKER).write_text("written by tracejoin_tools.istio.pin; a later run deletes this folder and writes it again\n")
    return pinned


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
    try:
        written = pin_tree(out, url, sha256)
    except PinError as error:
        print(f"pin: {error}", file=sys.stderr)
        return 1
    if not written:
        print(f"no `url: {PLACEHOLDER}` to pin in {HERE}", file=sys.stderr)
        return 1
    print(f"pinned {url} (sha256 {sha256}) into {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
