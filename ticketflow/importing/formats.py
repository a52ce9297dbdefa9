"""The formats ``ticketflow import`` reads: its presets by name, or a mapping file."""

from __future__ import annotations

from pathlib import Path

from ticketflow.importing.engine import Format
from ticketflow.importing.mapping import load_mapping, load_preset, preset_names

#: The presets' names (mapping files shipped in ``ticketflow/importing/presets``).
FORMATS: tuple[str, ...] = tuple(preset_names())


def get_format(name: str) -> Format:
    """The preset called ``name``, or a one-line error listing the valid names."""
    return Format(load_preset(name))


def mapped_format(path: Path) -> Format:
    """The format a mapping file describes."""
    return Format(load_mapping(path))
