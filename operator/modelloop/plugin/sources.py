"""The YAML documents ``kubectl modelloop lint`` reads: files, directories (their
``*.yaml`` and ``*.yml`` files, recursively, in name order) and ``-`` for stdin."""

import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from .lint import Document


def read(paths: list[str]) -> tuple[list[Document], list[str]]:
    """The documents of every file, and why the files that could not be read were not."""
    documents: list[Document] = []
    unreadable: list[str] = []
    for name in _files(paths):
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
            documents += [Document(name, doc) for doc in yaml.safe_load_all(text) if doc]
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            unreadable.append(f"{name}: {' '.join(str(error).split())}")
    return documents, unreadable


def _files(paths: list[str]) -> Iterator[str]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
            yield from sorted(str(p) for p in found)
        else:
            yield name  # a missing file is reported when it is read
