"""Writes the OCI image layout of tracejoin.wasm that Istio pulls for an `oci://` url, with no
Docker engine: the Wasm image spec's *compat* variant (one tar+gzip layer holding
`plugin.wasm`, the manifest annotated `module.wasm.image/variant: compat`), which Istio's
fetcher reads first (istio/README.md, "From an OCI registry").

    python -m tracejoin_tools.istio.oci --wasm tracejoin.wasm --out build/oci [--tag 0.1.0]

It prints the manifest digest: the `sha256` a WasmPlugin or TrafficExtension pins (Istio
compares it with the digest of the manifest it pulls, not of the module). The same module
gives the same layout, byte for byte: no timestamps, fixed tar metadata, and a gzip stream
of stored deflate blocks written here, so the digest does not depend on which zlib the
machine has (zlib and zlib-ng compress the same bytes differently, zlib-ng/zlib-ng#795).

`read_layout` checks a layout the way a registry client and Istio would read it (every blob
against its digest and size, the media types, the module inside the layer); `pin.py
--oci-layout` takes the digest from it.
"""

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import struct
import sys
import tarfile
import tomllib
import zlib
from dataclasses import dataclass
from pathlib import Path

from tracejoin_tools.common import ROOT

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYOUT_VERSION = "1.0.0"
# The file name Istio looks for in a compat layer (it compares the base name only).
MODULE_NAME = "plugin.wasm"
WASM_MAGIC = b"\0asm\1\0\0\0"
REF_NAME = "org.opencontainers.image.ref.name"
# OCI distribution spec's tag grammar.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class LayoutError(Exception):
    pass


def crate_version():
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def module_tar(module):
    """A tar holding the module as plugin.wasm, with nothing of the build machine in it."""
    info = tarfile.TarInfo(MODULE_NAME)
    info.size = len(module)
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(module))
    return out.getvalue()


def gzip_stored(data):
    """gzip (RFC 1952) around stored deflate blocks (RFC 1951, 3.2.4): byte-exact on every
    machine, unlike a compressor's output. Header: no name, mtime 0, OS unknown."""
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    block = 0xFFFF
    for start in range(0, len(data), block):
        chunk = data[start : start + block]
        final = start + block >= len(data)
        out += bytes([1 if final else 0]) + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk
    if not data:
        out += b"\x01\x00\x00\xff\xff"
    out += struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return bytes(out)


def descriptor(media_type, blob, annotations=None):
    found = {"mediaType": media_type, "digest": sha256_digest(blob), "size": len(blob)}
    if annotations:
        found["annotations"] = annotations
    return found


@dataclass
class Layout:
    tag: str
    manifest: bytes  # the manifest blob, as pushed: its sha256 is what Istio checks
    config: bytes
    layer: bytes
    module: bytes  # plugin.wasm inside the layer

    @property
    def digest(self):
        return sha256_digest(self.manifest)


def build(module, tag, version, source=None):
    """The blobs of the compat image for `module`."""
    if not module.startswith(WASM_MAGIC):
        raise LayoutError("not a wasm module (no \\0asm version 1 header)")
    if not TAG.fullmatch(tag):
        raise LayoutError(f"{tag!r} is not an OCI tag")
    tar = module_tar(module)
    layer = gzip_stored(tar)
    # An image config as the image spec defines it (rootfs.diff_ids is the uncompressed
    # layer), so registries and image tools take it as an ordinary image; os/architecture
    # are Go's names for the module's target, wasm32-wasip1. No `created`: it would change
    # the digest on every build.
    config = canonical_json({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
    })
    annotations = {
        "module.wasm.image/variant": "compat",
        "org.opencontainers.image.title": "tracejoin",
        "org.opencontainers.image.description": "proxy-wasm filter for Envoy and Istio that joins trace contexts (W3C, B3, Jaeger)",
        "org.opencontainers.image.version": version,
    }
    if source:
        annotations["org.opencontainers.image.source"] = source
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(CONFIG_TYPE, config),
        "layers": [descriptor(LAYER_TYPE, layer)],
        "annotations": annotations,
    })
    return Layout(tag=tag, manifest=manifest, config=config, layer=layer, module=module)


def blob_path(root, digest):
    algorithm, _, encoded = digest.partition(":")
    return root / "blobs" / algorithm / encoded


def write(layout, out):
    """Writes the layout into `out`, replacing an OCI layout already there (and nothing else)."""
    out = Path(out)
    if out.exists():
        if not (out / "oci-layout").exists() and any(out.iterdir()):
            raise LayoutError(f"{out} exists and is not an OCI layout: not overwriting it")
        shutil.rmtree(out)
    (out / "blobs" / "sha256").mkdir(parents=True)
    for blob in (layout.manifest, layout.config, layout.layer):
        blob_path(out, sha256_digest(blob)).write_bytes(blob)
    (out / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [descriptor(MANIFEST_TYPE, layout.manifest, {REF_NAME: layout.tag})],
    }
    (out / "index.json").write_bytes(canonical_json(index))


def read_blob(root, found):
    """A descriptor's blob, checked against its digest and size."""
    digest, size = found.get("digest", ""), found.get("size")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise LayoutError(f"unsupported or malformed digest {digest!r}")
    path = blob_path(root, digest)
    if not path.is_file():
        raise LayoutError(f"blob {digest} missing ({path})")
    blob = path.read_bytes()
    if sha256_digest(blob) != digest:
        raise LayoutError(f"blob {digest} does not match its digest")
    if len(blob) != size:
        raise LayoutError(f"blob {digest} is {len(blob)} bytes, its descriptor says {size}")
    return blob


def read_json(data, what):
    try:
        return json.loads(data)
    except ValueError as error:
        raise LayoutError(f"{what} is not JSON: {error}") from error


def read_layout(root, tag=None):
    """The compat image a layout holds (the manifest named `tag`, or its only one), checked."""
    root = Path(root)
    if not (root / "oci-layout").is_file():
        raise LayoutError(f"{root} is not an OCI image layout (no oci-layout file): run `make oci`")
    if read_json((root / "oci-layout").read_bytes(), "oci-layout").get("imageLayoutVersion") != LAYOUT_VERSION:
        raise LayoutError(f"{root}/oci-layout: imageLayoutVersion is not {LAYOUT_VERSION}")
    index = read_json((root / "index.json").read_bytes(), "index.json")
    manifests = [m for m in index.get("manifests", []) if m.get("mediaType") == MANIFEST_TYPE]
    named = [m for m in manifests if tag is not None and m.get("annotations", {}).get(REF_NAME) == tag]
    if named:
        chosen = named[0]
    elif len(manifests) == 1:
        chosen = manifests[0]
    else:
        raise LayoutError(f"{root}/index.json: no image manifest named {tag!r}, and not exactly one to take")
    manifest_blob = read_blob(root, chosen)
    manifest = read_json(manifest_blob, "the manifest")
    if manifest.get("schemaVersion") != 2 or manifest.get("mediaType") != MANIFEST_TYPE:
        raise LayoutError(f"the manifest is not an OCI image manifest ({MANIFEST_TYPE}, schemaVersion 2)")
    if manifest.get("config", {}).get("mediaType") != CONFIG_TYPE:
        raise LayoutError(f"the manifest's config is not {CONFIG_TYPE}")
    layers = manifest.get("layers", [])
    # Istio reads the last layer of a compat image; the spec asks for exactly one.
    if len(layers) != 1 or layers[0].get("mediaType") != LAYER_TYPE:
        raise LayoutError(f"a compat image has exactly one {LAYER_TYPE} layer")
    if manifest.get("annotations", {}).get("module.wasm.image/variant") != "compat":
        raise LayoutError("the manifest lacks the annotation module.wasm.image/variant: compat")
    config = read_blob(root, manifest["config"])
    layer = read_blob(root, layers[0])
    try:
        tar = gzip.decompress(layer)
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            members = [m for m in archive.getmembers() if Path(m.name).name == MODULE_NAME and m.isfile()]
            module = archive.extractfile(members[0]).read() if members else None
    except (OSError, EOFError, tarfile.TarError, zlib.error) as error:
        raise LayoutError(f"the layer is not a tar+gzip: {error}") from error
    if module is None:
        raise LayoutError(f"the layer holds no {MODULE_NAME}")
    if not module.startswith(WASM_MAGIC):
        raise LayoutError(f"{MODULE_NAME} in the layer is not a wasm module")
    if read_json(config, "the config").get("rootfs", {}).get("diff_ids") != [sha256_digest(tar)]:
        raise LayoutError("the config's rootfs.diff_ids is not the uncompressed layer's digest")
    found_tag = chosen.get("annotations", {}).get(REF_NAME, "")
    return Layout(tag=found_tag, manifest=manifest_blob, config=config, layer=layer, module=module)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", default="tracejoin.wasm", help="the module (make build writes ./tracejoin.wasm)")
    parser.add_argument("--out", default="build/oci", help="the layout directory (replaced if it is one)")
    parser.add_argument("--tag", help="the layout's tag (org.opencontainers.image.ref.name); default: the crate's version")
    parser.add_argument("--source", help="org.opencontainers.image.source annotation (the repository url), if any")
    args = parser.parse_args(argv)
    version = crate_version()
    try:
        layout = build(Path(args.wasm).read_bytes(), args.tag or version, version, args.source)
        write(layout, args.out)
        read_layout(args.out, layout.tag)
    except (LayoutError, OSError) as error:
        print(f"oci: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: tracejoin {version} as {args.out}:{layout.tag}, Wasm compat image (one {LAYER_TYPE} layer holding {MODULE_NAME})")
    print(f"manifest digest: {layout.digest} ({len(layout.manifest)} bytes; layer {len(layout.layer)} bytes)")
    print(f"sha256 for WasmPlugin/TrafficExtension: {layout.digest.removeprefix('sha256:')}")
    print("push it, e.g.:")
    print(f"  skopeo copy --preserve-digests oci:{args.out}:{layout.tag} docker://registry.example.com/tracejoin:{layout.tag}")
    print(f"  oras cp --from-oci-layout {args.out}:{layout.tag} registry.example.com/tracejoin:{layout.tag}")
    print(f"then: make istio-release IMAGE=registry.example.com/tracejoin:{layout.tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
