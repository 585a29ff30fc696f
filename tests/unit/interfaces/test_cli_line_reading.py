"""Log files read line by line: the same lines as splitting the whole file, in any shape.

``icn log import`` and ``icn audit verify FILE`` used to read the whole file and
split it; they now read it as the verifier asks, so a file of a million lines
is never held at once. The lines (and their count, taken up front for the
progress bar and the choice of threads or processes) must not change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icn.application.audit import split_lines
from icn.interfaces.cli.common import count_lines, read_lines

SHAPES = [b"", b"\n", b"a", b"a\n", b"a\nb", b"a\nb\n", b"\n\n", b"a\n\nb\n", b"a\r\nb\r\n"]


@pytest.mark.parametrize("data", SHAPES)
def test_lines_read_one_by_one_are_the_lines_of_the_whole_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(data)
    assert list(read_lines(path)) == split_lines(data)
    assert count_lines(path) == len(split_lines(data))


@settings(deadline=None)  # a temporary file per example: disk time, not ours
@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    st.booleans(),
)
def test_any_file_reads_as_it_splits(lines: list[bytes], final_newline: bool) -> None:
    import tempfile

    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        path.write_bytes(data)
        assert list(read_lines(path)) == split_lines(data)
        assert count_lines(path) == len(split_lines(data))
