"""``--set SECTION.FIELD=VALUE`` overrides of a generator configuration (``cxw generate --set``):
one mess rate or effect size, e.g. ``mess.resend_rate=0.05`` or ``effects.nps_per_late_delivery=-2``."""

from __future__ import annotations

import dataclasses
import json

from .config import GeneratorConfig


class OverrideError(ValueError):
    """An override that names no known field or whose value does not fit the field (message for the user)."""


def apply_overrides(cfg: GeneratorConfig, overrides: tuple[str, ...] | list[str]) -> GeneratorConfig:
    """``cfg`` with each ``section.field=value`` applied in order; the value is parsed as JSON (as text
    for a text field) and converted to the field's current type. Raises :class:`OverrideError`."""
    for item in overrides:
        if "=" not in item:
            raise OverrideError(f"{item!r}: expected section.field=value")
        path, raw = item.split("=", 1)
        parts = path.split(".")
        if len(parts) != 2 or parts[0] not in ("mess", "effects"):
            raise OverrideError(f"{path!r}: expected mess.<field> or effects.<field>")
        section = getattr(cfg, parts[0])
        fields = {f.name: f for f in dataclasses.fields(section)}
        if parts[1] not in fields:
            raise OverrideError(f"{parts[0]} has no field {parts[1]!r}; known: {', '.join(sorted(fields))}")
        current = getattr(section, parts[1])
        try:
            value = json.loads(raw) if not isinstance(current, str) else raw
            if isinstance(current, tuple):
                value = tuple(value)
            elif isinstance(current, float):
                value = float(value)
            elif isinstance(current, int):
                value = int(value)
        except (ValueError, TypeError) as exc:
            raise OverrideError(f"{item!r}: {exc}") from None
        cfg = dataclasses.replace(cfg, **{parts[0]: dataclasses.replace(section, **{parts[1]: value})})
    return cfg
