"""Turns a shipped Envoy config (envoy/*.yaml, written for docker-compose) into one that runs
on this machine's loopback: listener and admin on 127.0.0.1 port 0, clusters pointed at local
ports, the wasm path at the local build. Used by the native runner and the tests, so both run
the very files users run under Docker."""

import copy

import yaml

from tracejoin_tools.common import loopback


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def localize(config, cluster_ports, wasm_path, plugin_config=None):
    """A copy of `config` for loopback. `cluster_ports` maps cluster name to a local port;
    `plugin_config` (a JSON string), when given, replaces tracejoin's configuration."""
    config = copy.deepcopy(config)
    config["admin"]["address"]["socket_address"] = loopback()
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"] = loopback()
    for cluster in config["static_resources"]["clusters"]:
        port = cluster_ports[cluster["name"]]
        cluster["type"] = "STATIC"
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"] = loopback(port)
    found = 0
    for node in _walk(config):
        if node.get("name") == "tracejoin" and "vm_config" in node:
            node["vm_config"]["code"]["local"]["filename"] = wasm_path
            if plugin_config is not None:
                node["configuration"]["value"] = plugin_config
            found += 1
    if not found:
        raise ValueError("no tracejoin wasm filter in the config")
    return config
