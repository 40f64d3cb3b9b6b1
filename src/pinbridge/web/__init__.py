"""HTTP: the collector (and later the dashboard and pb.js)."""

from __future__ import annotations
