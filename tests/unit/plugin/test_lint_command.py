"""`kubectl modelloop lint FILE|DIR...`: which files it reads, what it prints, its exit status."""

import io
from pathlib import Path

import pytest

from modelloop.plugin.__main__ import main
from modelloop.plugin.sources import read

TEMPLATE = """\
apiVersion: modelloop.dev/v1alpha1
kind: MetricTemplate
metadata: {name: auc}
spec: {query: x}
"""
BROKEN = TEMPLATE.replace("spec: {query: x}", "spec: {query: x, groupBy: [a, a]}")
OTHER = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"


def test_a_directory_is_read_recursively_and_every_document_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(TEMPLATE)
    (tmp_path / "a.yaml").write_text(f"{OTHER}---\n---\n{TEMPLATE}")
    (tmp_path / "notes.txt").write_text("not yaml: [")
    documents, unreadable = read([str(tmp_path)])
    assert [(Path(d.file).name, d.manifest["kind"]) for d in documents] == [
        ("a.yaml", "ConfigMap"),
        ("a.yaml", "MetricTemplate"),
        ("b.yml", "MetricTemplate"),
    ]
    assert unreadable == []


def test_exit_0_when_clean_1_with_findings_2_when_a_file_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad, garbled = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "x.yaml"
    good.write_text(TEMPLATE)
    bad.write_text(BROKEN)
    garbled.write_text("a: [")

    assert main(["lint", str(good)]) == 0
    assert capsys.readouterr().out == ""

    assert main(["lint", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert out == f'{bad}: MetricTemplate/auc: spec.groupBy[1]: Duplicate value: "a"\n'

    assert main(["lint", str(bad), str(garbled), str(tmp_path / "missing.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{bad}: MetricTemplate/auc: spec.groupBy[1]: ")
    errors = captured.err.splitlines()
    assert errors[0].startswith(f"error: {garbled}: while parsing a flow")
    assert errors[1].startswith(f"error: {tmp_path / 'missing.yaml'}: [Errno 2]")


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(BROKEN))
    documents, _ = read(["-"])
    assert [(d.file, d.manifest["metadata"]["name"]) for d in documents] == [("-", "auc")]
