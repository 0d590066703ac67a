"""psquadlet: Podman Quadlet units for perfSONAR testpoints and other long-lived containers."""

__version__ = "0.1.1"
