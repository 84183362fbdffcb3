#!/usr/bin/env python3
"""Turns a CustomResourceDefinition into a strict JSON schema for one version.

    crd-to-schema.py CRD.yaml VERSION > kind.json

Strict as `kubernetes-validate --strict` is for core kinds: every object that
lists its properties refuses others (the CRD's structural schema prunes them
in a cluster, silently; here they are an error), apiVersion and kind must be
the CRD's. `x-kubernetes-*` markers are left in: JSON schema ignores them.
"""
import json
import sys

from ruamel.yaml import YAML


def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)
    return node


def main(path, version):
    crd = YAML(typ="safe").load(open(path))
    spec = crd["spec"]
    (served,) = [v for v in spec["versions"] if v["name"] == version]
    schema = strict(served["schema"]["openAPIV3Schema"])
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["properties"]["apiVersion"] = {"const": f"{spec['group']}/{version}"}
    schema["properties"]["kind"] = {"const": spec["names"]["kind"]}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    # metadata is validated by the API server's ObjectMeta, not the CRD.
    schema["properties"]["metadata"] = {"type": "object"}
    json.dump(schema, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
