"""Tests for detector.documents: every supported format and every error kind."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from detector import documents
from detector.documents import MAX_DOCUMENT_CHARS, DocumentError, read_document

ESSAY = "The industrial revolution changed how people worked and lived. " * 5


def make_text_pdf(path: Path, lines: list[str]) -> None:
    """A minimal valid one-page PDF with a Helvetica text object (no PDF library needed)."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def kind_of(path: Path, **kwargs) -> str:
    with pytest.raises(DocumentError) as info:
        read_document(path, **kwargs)
    assert str(path) in info.value.message  # messages name the file
    return info.value.kind


# --- supported formats ----------------------------------------------------------------


def test_plain_text_and_markdown(tmp_path: Path) -> None:
    txt = tmp_path / "essay.txt"
    txt.write_text(ESSAY, encoding="utf-8")
    doc = read_document(txt)
    assert doc.text == ESSAY
    assert doc.warnings == []
    assert doc.path == str(txt)
    assert len(doc.sha256) == 64

    md = tmp_path / "notes.md"
    md.write_text("# Title\n\nSome *markdown* text.\n", encoding="utf-8")
    assert "*markdown*" in read_document(md).text


def test_unknown_extension_is_read_as_text(tmp_path: Path) -> None:
    p = tmp_path / "essay.rtxt"
    p.write_text(ESSAY, encoding="utf-8")
    assert read_document(p).text == ESSAY


def test_sha256_changes_with_content(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("first version of the essay", encoding="utf-8")
    first = read_document(p).sha256
    p.write_text("second version of the essay", encoding="utf-8")
    assert read_document(p).sha256 != first


def test_html_strips_tags_scripts_and_styles(tmp_path: Path) -> None:
    p = tmp_path / "page.html"
    p.write_text(
        "<html><head><title>T</title><style>body {color: red}</style></head><body>"
        "<script>var x = 'hidden';</script><h1>Heading</h1><p>First &amp; only paragraph.</p>"
        "<p>Second<br>line</p></body></html>",
        encoding="utf-8",
    )
    text = read_document(p).text
    assert "Heading" in text and "First & only paragraph." in text
    assert "hidden" not in text and "color" not in text and "<p>" not in text
    assert "Second\nline" in text


def test_real_docx(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph("First paragraph of the essay.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "cell one"
    table.rows[0].cells[1].text = "cell two"
    document.add_paragraph("Last paragraph.")
    p = tmp_path / "essay.docx"
    document.save(str(p))
    doc = read_document(p)
    assert doc.text.index("First paragraph") < doc.text.index("cell one") < doc.text.index("Last paragraph")
    assert doc.sha256


def test_empty_docx_is_empty(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    p = tmp_path / "blank.docx"
    docx.Document().save(str(p))
    assert kind_of(p) == "empty"


def test_pdf_with_text(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    p = tmp_path / "essay.pdf"
    make_text_pdf(p, ["Hello from a tiny hand-made PDF.", "Second line (with parentheses)."])
    text = read_document(p).text
    assert "Hello from a tiny hand-made PDF." in text
    assert "Second line (with parentheses)." in text


def test_pdf_without_text_is_no_text(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=612, height=792)
    p = tmp_path / "scan.pdf"
    with open(p, "wb") as f:
        writer.write(f)
    assert kind_of(p) == "no_text"


def test_corrupt_docx_and_pdf(tmp_path: Path) -> None:
    bad_docx = tmp_path / "broken.docx"
    bad_docx.write_bytes(os.urandom(2048))
    assert kind_of(bad_docx) == "corrupt_document"

    zip_not_docx = tmp_path / "archive.docx"
    import zipfile

    with zipfile.ZipFile(zip_not_docx, "w") as z:
        z.writestr("hello.txt", "not a word document")
    assert kind_of(zip_not_docx) == "corrupt_document"

    bad_pdf = tmp_path / "broken.pdf"
    bad_pdf.write_bytes(b"%PDF-1.4\n" + os.urandom(512))
    assert kind_of(bad_pdf) in ("corrupt_document", "no_text")

    not_pdf = tmp_path / "fake.pdf"
    not_pdf.write_text("just text pretending to be a pdf", encoding="utf-8")
    assert kind_of(not_pdf) == "corrupt_document"


# --- encodings --------------------------------------------------------------------------


def test_utf8_bom_is_stripped(tmp_path: Path) -> None:
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbf" + "Caf\u00e9 au lait".encode("utf-8"))
    doc = read_document(p)
    assert doc.text == "Caf\u00e9 au lait"
    assert doc.warnings == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_bom(tmp_path: Path, encoding: str) -> None:
    p = tmp_path / "wide.txt"
    text = "R\u00e9sum\u00e9 of the na\u00efve essay \u2014 with \u4e2d\u6587 too."
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    p.write_bytes(data)
    doc = read_document(p)
    assert doc.text == text
    assert any(w.startswith("decoded_as_utf-") for w in doc.warnings)


def test_utf16_without_bom(tmp_path: Path) -> None:
    p = tmp_path / "nobom.txt"
    p.write_bytes(ESSAY.encode("utf-16-le"))
    doc = read_document(p)
    assert doc.text == ESSAY
    assert doc.warnings == ["decoded_as_utf-16-le_without_bom"]


def test_cp1252_with_accents(tmp_path: Path) -> None:
    text = ("Le caf\u00e9 cr\u00e8me et la cr\u00e8me br\u00fbl\u00e9e sont na\u00efves; "
            "\u00e7a co\u00fbte cher \u2014 \u201cvoil\u00e0\u201d. ") * 4
    p = tmp_path / "legacy.txt"
    p.write_bytes(text.encode("cp1252"))
    doc = read_document(p)
    assert doc.text == text
    assert doc.warnings == ["decoded_as_cp1252"]


def test_zero_width_characters_are_kept(tmp_path: Path) -> None:
    text = "Hid\u200bden zero\u200d-width char\u2060acters stay for the scorer."
    p = tmp_path / "zw.txt"
    p.write_text(text, encoding="utf-8")
    assert read_document(p).text == text


def test_decode_error_for_invalid_utf16(tmp_path: Path) -> None:
    p = tmp_path / "bad16.txt"
    # A UTF-16 BOM followed by many lone surrogates: it claims UTF-16 but is not valid UTF-16.
    p.write_bytes(b"\xff\xfe" + "hello".encode("utf-16-le") + b"\x00\xd8\x41\x00" * 50)
    assert kind_of(p) == "decode_error"


def test_few_bad_bytes_after_bom_are_replaced(tmp_path: Path) -> None:
    p = tmp_path / "mostly.txt"
    p.write_bytes(b"\xef\xbb\xbf" + ESSAY.encode() * 4 + b"\xff" + b" end.")
    doc = read_document(p)
    assert doc.text.endswith("\ufffd end.")
    assert "replaced_1_undecodable_bytes" in doc.warnings


# --- errors -------------------------------------------------------------------------------


def test_not_found(tmp_path: Path) -> None:
    assert kind_of(tmp_path / "missing.txt") == "not_found"


def test_broken_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "gone.txt")
    with pytest.raises(DocumentError) as info:
        read_document(link)
    assert info.value.kind == "broken_symlink"
    assert "gone.txt" in info.value.message


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "folder.txt"
    d.mkdir()
    assert kind_of(d) == "is_directory"


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_empty_and_whitespace_only(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "empty.txt"
    p.write_bytes(content)
    assert kind_of(p) == "empty"


def test_empty_html_is_empty(tmp_path: Path) -> None:
    p = tmp_path / "blank.html"
    p.write_text("<html><head><script>x()</script></head><body>  </body></html>", encoding="utf-8")
    assert kind_of(p) == "empty"


@pytest.mark.parametrize(
    ("name", "content", "hint"),
    [
        ("image.txt", b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64), "PNG"),
        ("photo.txt", b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(64), "JPEG"),
        ("anim.md", b"GIF89a" + bytes(64), "GIF"),
        ("paper.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        ("archive.txt", b"PK\x03\x04\x14\x00" + bytes(64), "ZIP"),
        ("nul.txt", b"some text\x00with a NUL byte in it", "NUL"),
        ("controls.txt", bytes(range(1, 9)) * 200, "control"),
    ],
)
def test_binary(tmp_path: Path, name: str, content: bytes, hint: str) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(DocumentError) as info:
        read_document(p)
    assert info.value.kind == "binary"
    assert hint in info.value.message


def test_random_bytes_are_binary(tmp_path: Path) -> None:
    p = tmp_path / "noise.txt"
    p.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(4096)))
    assert kind_of(p) in ("binary", "decode_error")


def test_permission_denied_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "secret.txt"
    p.write_text(ESSAY, encoding="utf-8")

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(documents, "open", deny, raising=False)
    assert kind_of(p) == "permission_denied"


def test_permission_denied_real(tmp_path: Path) -> None:
    p = tmp_path / "secret.txt"
    p.write_text(ESSAY, encoding="utf-8")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not block reading")
        assert kind_of(p) == "permission_denied"
    finally:
        p.chmod(0o644)


# --- size limits -----------------------------------------------------------------------


def test_truncation_warning(tmp_path: Path) -> None:
    p = tmp_path / "long.txt"
    p.write_text("abcdefghij" * 100, encoding="utf-8")
    doc = read_document(p, max_chars=250)
    assert len(doc.text) == 250
    assert doc.warnings == ["file_truncated_to_250_chars"]


def test_truncation_does_not_split_multibyte_characters(tmp_path: Path) -> None:
    p = tmp_path / "wide.txt"
    p.write_text("\u00e9\u4e2d\U0001f600" * 1000, encoding="utf-8")
    doc = read_document(p, max_chars=100)
    assert len(doc.text) == 100
    assert "\ufffd" not in doc.text


def test_huge_file_bounded_memory(tmp_path: Path) -> None:
    p = tmp_path / "huge.txt"
    line = ("x" * 99 + "\n").encode()
    chunk = line * 10_000  # 1 MB
    with open(p, "wb") as f:
        for _ in range(100):  # 100 MB written in chunks
            f.write(chunk)
    assert p.stat().st_size == 100 * len(chunk)
    tracemalloc.start()
    try:
        doc = read_document(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(doc.text) == MAX_DOCUMENT_CHARS
    assert doc.warnings == [f"file_truncated_to_{MAX_DOCUMENT_CHARS}_chars"]
    assert peak < 20 * MAX_DOCUMENT_CHARS  # a few MB, not 100 MB
