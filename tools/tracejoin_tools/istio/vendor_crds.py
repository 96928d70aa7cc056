"""Copies from Istio's CRD bundle (istio/api's kubernetes/customresourcedefinitions.gen.yaml)
the CustomResourceDefinitions of the Istio kinds that the kit's manifests (istio/**/*.yaml) use,
each document as it is there, into istio/crds/istio-crds.yaml: the schemas the tests validate
the manifests against.

    python -m tracejoin_tools.istio.vendor_crds BUNDLE --source "istio/api @ COMMIT"
"""

import argparse
import sys

import yaml

from tracejoin_tools.common import ROOT

ISTIO = ROOT / "istio"
VENDORED = ISTIO / "crds" / "istio-crds.yaml"


def used_kinds():
    """{(group, kind)} of every Istio resource in istio/**/*.yaml (the ambient kit's too)."""
    kinds = set()
    for path in sorted(p for p in ISTIO.glob("**/*.yaml") if "crds" not in p.parts):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and ".istio.io/" in doc.get("apiVersion", ""):
                kinds.add((doc["apiVersion"].split("/")[0], doc["kind"]))
    return kinds


def documents(text):
    """The YAML documents of a bundle, as text (split on `---` lines, so each is kept as is)."""
    doc = []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == "---":
            yield "".join(doc)
            doc = []
        else:
            doc.append(line)
    yield "".join(doc)


def served(doc):
    crd = yaml.safe_load(doc)
    if not crd or crd.get("kind") != "CustomResourceDefinition":
        return None
    return crd["spec"]["group"], crd["spec"]["names"]["kind"]


def header(source, kinds):
    names = ", ".join(kind for _, kind in sorted(kinds, key=lambda k: k[1]))
    return (
        f"# Istio's CustomResourceDefinitions for the kinds the kit in istio/ uses ({names}),\n"
        f"# copied as they are from {source}, kubernetes/customresourcedefinitions.gen.yaml.\n"
        "# Istio is licensed under the Apache License 2.0 (LICENSE beside this file).\n"
        "# Regenerate with `python -m tracejoin_tools.istio.vendor_crds` (README.md beside this file).\n"
    )


def vendor(bundle_text, source, kinds):
    """The vendored file's text; fails when the bundle lacks a kind."""
    kept = [(served(doc), doc) for doc in documents(bundle_text)]
    kept = [doc for kind, doc in kept if kind in kinds]
    found = {served(doc) for doc in kept}
    missing = kinds - found
    if missing:
        raise SystemExit(f"the bundle has no CRD for {sorted(missing)}")
    return header(source, kinds) + "---\n".join(doc if doc.endswith("\n") else doc + "\n" for doc in kept)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="istio/api's kubernetes/customresourcedefinitions.gen.yaml")
    parser.add_argument("--source", required=True, help='where the bundle comes from, e.g. "istio/api @ <commit>"')
    args = parser.parse_args(argv)
    kinds = used_kinds()
    with open(args.bundle) as f:
        text = vendor(f.read(), args.source, kinds)
    VENDORED.parent.mkdir(parents=True, exist_ok=True)
    VENDORED.write_text(text)
    print(f"wrote {VENDORED}: {len(kinds)} CRDs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
