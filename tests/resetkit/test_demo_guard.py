"""The demo only ever replaces a folder it made itself."""

from click.testing import CliRunner

from pipeline.demo import main


def test_demo_refuses_a_foreign_folder(tmp_path):
    keep = tmp_path / "precious.txt"
    keep.write_text("do not delete")
    result = CliRunner().invoke(main, ["--out", str(tmp_path)])
    assert result.exit_code != 0 and "not a resetkit demo folder" in result.output
    assert keep.read_text() == "do not delete"
