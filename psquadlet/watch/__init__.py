"""The upgrade watcher: registry checks, health-gated upgrades and rollbacks.

``core`` is plain logic over the small interfaces in ``interfaces``; podman-py, pystemd and
HTTP live in the adapter modules, which import their libraries lazily so that importing this
package stays cheap.
"""
