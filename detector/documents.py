"""Read one input file (text, Markdown, HTML, .docx, .pdf) into plain text, robustly.

Why: teachers point the detector at whatever is on their disk. Every way a file can be
unusable becomes a ``DocumentError`` with a machine-readable ``kind`` (the batch status
column) and a specific, human-readable message, instead of a crash or garbage scores.

Text is returned as read: zero-width characters, homoglyphs etc. are kept, because
normalisation (and warning about it) is the scorer's job (see ``detector.normalize``).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

# The scorer only looks at the first few hundred tokens (and a sentence view of a page or
# two), so 200k characters (~100 pages) is far more than enough; the cap bounds memory
# and time for huge or accidental inputs (logs, dumps, a 100 MB file).
MAX_DOCUMENT_CHARS = 200_000
# No encoding needs more than 4 bytes per character, so this many bytes always suffice.
BYTES_PER_CHAR = 4
_HASH_CHUNK = 1 << 20

TEXT_EXTENSIONS = (".txt", ".md")
HTML_EXTENSIONS = (".html", ".htm")
DOCX_EXTENSIONS = (".docx",)
PDF_EXTENSIONS = (".pdf",)
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS + HTML_EXTENSIONS + DOCX_EXTENSIONS + PDF_EXTENSIONS

# Error kinds (the ``status`` column of batch output).
NOT_FOUND = "not_found"
BROKEN_SYMLINK = "broken_symlink"
PERMISSION_DENIED = "permission_denied"
IS_DIRECTORY = "is_directory"
EMPTY = "empty"
BINARY = "binary"
CORRUPT_DOCUMENT = "corrupt_document"
NO_TEXT = "no_text"
DECODE_ERROR = "decode_error"
# Any other OS-level failure (I/O error, a FIFO/device instead of a regular file).
READ_ERROR = "read_error"
ERROR_KINDS = (NOT_FOUND, BROKEN_SYMLINK, PERMISSION_DENIED, IS_DIRECTORY, EMPTY, BINARY,
               CORRUPT_DOCUMENT, NO_TEXT, DECODE_ERROR, READ_ERROR)

# Magic numbers of common non-text formats, for a specific "this is a PNG" message.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document (rename it to .pdf)"),
    (b"PK\x03\x04", "a ZIP archive (a .docx/.odt/.zip renamed?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.doc/.xls); save it as .docx or .txt"),
    (b"{\\rtf", "an RTF document; save it as .docx or .txt"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable program"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
# BOMs, longest first (the UTF-32-LE BOM starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# More than this share of control characters means "not text" even if it decodes.
MAX_CONTROL_RATIO = 0.05
# A file with a BOM but a few undecodable bytes is still read (with replacement characters).
MAX_BAD_CHAR_RATIO = 0.005
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")


class DocumentError(Exception):
    """A file that cannot be turned into text; ``kind`` is one of ERROR_KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class Document:
    """Text of one file; ``sha256`` hashes the raw bytes the text came from (a resume key)."""

    path: str
    text: str
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""


def read_document(path: str | os.PathLike, max_chars: int = MAX_DOCUMENT_CHARS) -> Document:
    """Read ``path`` into text (at most ``max_chars`` characters) or raise DocumentError.

    Only a bounded number of bytes is read from text files, so huge files are safe.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    p = Path(path)
    name = str(p)
    _check_path(p)
    suffix = p.suffix.lower()
    try:
        with open(p, "rb") as f:
            if suffix in DOCX_EXTENSIONS:
                text, warnings, sha = _read_docx(f, name, max_chars)
            elif suffix in PDF_EXTENSIONS:
                text, warnings, sha = _read_pdf(f, name, max_chars)
            else:
                text, warnings, sha = _read_text_file(f, name, max_chars, html=suffix in HTML_EXTENSIONS)
    except DocumentError:
        raise
    except FileNotFoundError as e:
        raise DocumentError(NOT_FOUND, f"{name}: file not found (it disappeared while being read)") from e
    except PermissionError as e:
        raise DocumentError(PERMISSION_DENIED, f"{name}: permission denied; check the file's read permissions") from e
    except IsADirectoryError as e:
        raise DocumentError(IS_DIRECTORY, f"{name}: is a directory, not a file") from e
    except OSError as e:
        raise DocumentError(READ_ERROR, f"{name}: could not be read ({e.strerror or e})") from e
    if not text.strip():
        raise DocumentError(EMPTY, f"{name}: contains no text (only whitespace)")
    return Document(path=name, text=text, warnings=warnings, sha256=sha)


def _check_path(p: Path) -> None:
    """Classify missing/odd paths before opening, for specific messages (and never open a FIFO)."""
    name = str(p)
    try:
        st = p.stat()
    except FileNotFoundError as e:
        if p.is_symlink():
            target = os.readlink(p)
            raise DocumentError(BROKEN_SYMLINK, f"{name}: broken symbolic link (points to missing {target})") from e
        raise DocumentError(NOT_FOUND, f"{name}: file not found") from e
    except PermissionError as e:
        raise DocumentError(PERMISSION_DENIED, f"{name}: permission denied (cannot access the file)") from e
    except OSError as e:
        if p.is_symlink():  # e.g. ELOOP: a symlink loop
            raise DocumentError(BROKEN_SYMLINK, f"{name}: broken symbolic link ({e.strerror or e})") from e
        raise DocumentError(READ_ERROR, f"{name}: could not be accessed ({e.strerror or e})") from e
    if stat.S_ISDIR(st.st_mode):
        raise DocumentError(IS_DIRECTORY, f"{name}: is a directory, not a file (use --recursive to score its files?)")
    if not stat.S_ISREG(st.st_mode):
        raise DocumentError(READ_ERROR, f"{name}: not a regular file (a pipe, socket or device); not read")
    if st.st_size == 0:
        raise DocumentError(EMPTY, f"{name}: file is empty (0 bytes)")


# --- plain text and HTML -------------------------------------------------------------


def _read_text_file(f: BinaryIO, name: str, max_chars: int, html: bool) -> tuple[str, list[str], str]:
    limit = max_chars * BYTES_PER_CHAR
    data = f.read(limit)
    truncated = bool(f.read(1))
    sha = hashlib.sha256(data).hexdigest()
    text, warnings = decode_bytes(data, name, truncated=truncated)
    if html:
        text = html_to_text(text)
    if truncated or len(text) > max_chars:
        text = text[:max_chars]
        warnings.append(f"file_truncated_to_{len(text)}_chars")
    return text, warnings, sha


def decode_bytes(data: bytes, name: str = "<bytes>", truncated: bool = False) -> tuple[str, list[str]]:
    """Bytes to str: BOM, then UTF-8, then charset detection; raises DocumentError for non-text.

    ``truncated`` means ``data`` was cut from a longer file, so a split trailing character is dropped.
    """
    if not data.strip():
        raise DocumentError(EMPTY, f"{name}: contains no text (only whitespace)")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode_with_bom(data, encoding, name, truncated)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DocumentError(BINARY, f"{name}: not a text file; it looks like {what}")
    if b"\x00" in data:
        guess = _utf16_without_bom(data)
        if guess is None:
            n_nul = data.count(b"\x00")
            raise DocumentError(BINARY, f"{name}: not a text file (contains {n_nul} NUL bytes in the first "
                                        f"{len(data)} bytes)")
        text = _decode(data, guess, truncated, errors="replace")
        return _check_texty(text, name), [f"decoded_as_{guess}_without_bom"]
    try:
        text = _decode(data, "utf-8", truncated)
        return _check_texty(text, name), []
    except UnicodeDecodeError:
        pass
    encoding = _detect_encoding(data)
    if encoding is None:
        if _control_ratio(data.decode("latin-1")) > MAX_CONTROL_RATIO:
            raise DocumentError(BINARY, f"{name}: not a text file (mostly non-text bytes)")
        raise DocumentError(DECODE_ERROR, f"{name}: not UTF-8 and its text encoding could not be determined; "
                                          "save it as UTF-8 text")
    try:
        text = _decode(data, encoding, truncated)
    except (UnicodeDecodeError, LookupError) as e:
        raise DocumentError(DECODE_ERROR, f"{name}: could not be decoded as {encoding} ({e})") from e
    return _check_texty(text, name), [f"decoded_as_{encoding}"]


def _decode(data: bytes, encoding: str, truncated: bool, errors: str = "strict") -> str:
    # An incremental decoder with final=False drops a character split by the byte limit.
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    return decoder.decode(data, final=not truncated)


def _decode_with_bom(data: bytes, encoding: str, name: str, truncated: bool) -> tuple[str, list[str]]:
    label = encoding.replace("-sig", "")
    try:
        text = _decode(data, encoding, truncated)
        return _check_texty(text, name), ([] if encoding == "utf-8-sig" else [f"decoded_as_{label}"])
    except UnicodeDecodeError:
        pass
    # A file that declares its encoding but has a few bad bytes is still worth reading.
    text = _decode(data, encoding, truncated, errors="replace")
    n_bad = text.count("\ufffd")
    if n_bad > max(1.0, MAX_BAD_CHAR_RATIO * len(text)):
        raise DocumentError(DECODE_ERROR, f"{name}: starts with a {label.upper()} byte-order mark but "
                                          f"{n_bad} characters are not valid {label.upper()}")
    warnings = [] if encoding == "utf-8-sig" else [f"decoded_as_{label}"]
    return _check_texty(text, name), warnings + [f"replaced_{n_bad}_undecodable_bytes"]


def _utf16_without_bom(data: bytes) -> str | None:
    """Recognise BOM-less UTF-16 of mostly-ASCII text: every other byte is NUL."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul > 0.7 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.7 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def _detect_encoding(data: bytes) -> str | None:
    """charset-normalizer's best guess, preferring cp1252 when it is as good (the commonest legacy encoding)."""
    from charset_normalizer import from_bytes

    results = list(from_bytes(data))
    if not results:
        return None
    best = results[0]
    for match in results:
        if (match.encoding == "cp1252" and match.chaos <= best.chaos + 0.01
                and match.coherence >= best.coherence - 0.01):
            return "cp1252"
    if best.encoding != "cp1252":
        try:  # same characters either way: use the familiar name
            if data.decode("cp1252") == str(best):
                return "cp1252"
        except UnicodeDecodeError:
            pass
    return best.encoding


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    n = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS)
    return n / len(text)


def _check_texty(text: str, name: str) -> str:
    if _control_ratio(text[:20_000]) > MAX_CONTROL_RATIO:
        raise DocumentError(BINARY, f"{name}: not a text file (too many control characters)")
    return text


class _HTMLText(HTMLParser):
    """Visible text of an HTML page: scripts/styles dropped, block elements become line breaks."""

    SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe", "object"})
    BLOCK = frozenset({
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
        "section", "article", "header", "footer", "blockquote", "pre", "hr", "dd", "dt", "dl",
        "main", "nav", "aside", "figure", "figcaption", "title", "td", "th",
    })

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


_SPACES_RE = re.compile(r"[ \t\f\v\r]+")
_BLANK_LINES_RE = re.compile(r"\n\s*\n+")


def html_to_text(html: str) -> str:
    """Visible text of an HTML document (stdlib parser: no extra dependency)."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = (_SPACES_RE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


# --- .docx and .pdf ------------------------------------------------------------------


def _hash_file(f: BinaryIO) -> str:
    h = hashlib.sha256()
    f.seek(0)
    while chunk := f.read(_HASH_CHUNK):
        h.update(chunk)
    f.seek(0)
    return h.hexdigest()


def _truncate(parts: list[str], max_chars: int, sep: str) -> tuple[str, list[str]]:
    text = sep.join(parts)
    if len(text) > max_chars:
        return text[:max_chars], [f"file_truncated_to_{max_chars}_chars"]
    return text, []


def _read_docx(f: BinaryIO, name: str, max_chars: int) -> tuple[str, list[str], str]:
    head = f.read(4)
    if head != b"PK\x03\x04":
        what = next((w for m, w in _MAGIC if head.startswith(m[:4])), None)
        detail = f"it looks like {what}" if what else "it is not a ZIP-based Word file"
        raise DocumentError(CORRUPT_DOCUMENT, f"{name}: not a valid .docx document ({detail})")
    sha = _hash_file(f)
    try:
        import docx

        document = docx.Document(f)
        parts: list[str] = []
        n_chars = 0
        # Body order (paragraphs and tables interleaved) needs python-docx >= 1.0; older: paragraphs then tables.
        inner = getattr(document, "iter_inner_content", None)
        blocks = inner() if inner else [*document.paragraphs, *document.tables]
        for block in blocks:
            if hasattr(block, "rows"):  # a table: one line per row, cells separated by tabs
                block_text = "\n".join("\t".join(cell.text for cell in row.cells) for row in block.rows)
            else:
                block_text = block.text
            parts.append(block_text)
            n_chars += len(block_text) + 1
            if n_chars > max_chars:
                break
    except DocumentError:
        raise
    except Exception as e:  # python-docx/zipfile/lxml raise many types for broken files
        raise DocumentError(CORRUPT_DOCUMENT, f"{name}: .docx file could not be read; it may be corrupt or "
                                              f"not really a Word document ({type(e).__name__}: {e})") from e
    text, warnings = _truncate(parts, max_chars, "\n")
    if not text.strip():
        raise DocumentError(EMPTY, f"{name}: the Word document contains no text")
    return text, warnings, sha


def _read_pdf(f: BinaryIO, name: str, max_chars: int) -> tuple[str, list[str], str]:
    head = f.read(1024)
    if b"%PDF-" not in head:
        raise DocumentError(CORRUPT_DOCUMENT, f"{name}: not a valid PDF (no %PDF header)")
    sha = _hash_file(f)
    warnings: list[str] = []
    try:
        import logging

        from pypdf import PdfReader

        logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about sloppy PDFs are noise here
        reader = PdfReader(f)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as e:
                raise DocumentError(CORRUPT_DOCUMENT, f"{name}: the PDF is encrypted and cannot be opened "
                                                      f"({type(e).__name__}: {e})") from e
            if not ok:
                raise DocumentError(CORRUPT_DOCUMENT, f"{name}: the PDF is password-protected")
        pages = reader.pages
        n_pages = len(pages)
        parts: list[str] = []
        n_chars = 0
        for i, page in enumerate(pages):
            try:
                page_text = page.extract_text() or ""
            except Exception:
                warnings.append(f"pdf_page_{i + 1}_unreadable")
                continue
            parts.append(page_text)
            n_chars += len(page_text) + 1
            if n_chars > max_chars:
                break
    except DocumentError:
        raise
    except Exception as e:
        raise DocumentError(CORRUPT_DOCUMENT, f"{name}: PDF could not be read; it may be corrupt "
                                              f"({type(e).__name__}: {e})") from e
    text, trunc = _truncate(parts, max_chars, "\n")
    if not text.strip():
        raise DocumentError(NO_TEXT, f"{name}: the PDF ({n_pages} page{'s' if n_pages != 1 else ''}) has no "
                                     "extractable text; it may be a scanned image (run OCR first)")
    return text, warnings + trunc, sha


# --- tables (JSON Lines / Parquet with a text column) ----------------------------------

TABLE_EXTENSIONS = (".jsonl", ".ndjson", ".parquet")
# A record of a table whose text is missing or not a string, or a JSON Lines line that is not a JSON object.
BAD_RECORD = "bad_record"
TABLE_ERROR_KINDS = (BAD_RECORD,)


def is_table(path: str | os.PathLike) -> bool:
    """True for a JSON Lines / Parquet table, whose records (not the file) are the inputs."""
    return str(path).lower().endswith(TABLE_EXTENSIONS)


def record_name(table: str, record_id: object) -> str:
    """The ``path`` of a table record in results: ``<table>#<id>`` (the id column, else the 0-based row number)."""
    return f"{table}#{record_id}"


def text_document(name: str, text: object, max_chars: int = MAX_DOCUMENT_CHARS) -> Document:
    """A Document for a text given directly (a table record); raise DocumentError if it is not usable text.

    ``sha256`` hashes the text's UTF-8 bytes (before truncation), so resume treats an edited record as new.
    """
    if not isinstance(text, str):
        what = "missing (null)" if text is None else f"a {type(text).__name__}, not a string"
        raise DocumentError(BAD_RECORD, f"{name}: the text is {what}")
    if not text.strip():
        raise DocumentError(EMPTY, f"{name}: contains no text (only whitespace)")
    sha = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
    warnings: list[str] = []
    if len(text) > max_chars:
        text = text[:max_chars]
        warnings.append(f"file_truncated_to_{max_chars}_chars")
    return Document(path=name, text=text, warnings=warnings, sha256=sha)


def read_table(path: str | os.PathLike, text_column: str = "text", id_column: str | None = "id",
               max_chars: int = MAX_DOCUMENT_CHARS) -> Iterator[tuple[str, Document | DocumentError]]:
    """Yield ``(name, Document or DocumentError)`` per record of a .jsonl/.parquet table, streaming.

    Why per record: one bad record (invalid JSON line, null text) gets its own error row and the rest
    are still scored. A table that cannot be opened at all, or has no ``text_column``, yields one error
    for the table itself. Records are named ``<table>#<id>``: the ``id_column`` value when the table has
    that column, else the 0-based record number.
    """
    name = str(path)
    try:
        _check_path(Path(path))
    except DocumentError as e:
        yield name, e
        return
    if name.lower().endswith(".parquet"):
        yield from _read_parquet_table(name, text_column, id_column, max_chars)
    else:
        yield from _read_jsonl_table(name, text_column, id_column, max_chars)


def _record(name: str, index: int, record: object, text_column: str, id_column: str | None,
            max_chars: int) -> tuple[str, Document | DocumentError]:
    if not isinstance(record, dict):
        rec_name = record_name(name, index)
        return rec_name, DocumentError(BAD_RECORD, f"{rec_name}: not a JSON object")
    rid = record.get(id_column) if id_column else None
    rec_name = record_name(name, index if rid is None else rid)
    try:
        return rec_name, text_document(rec_name, record.get(text_column), max_chars)
    except DocumentError as e:
        return rec_name, e


def _read_jsonl_table(name: str, text_column: str, id_column: str | None,
                      max_chars: int) -> Iterator[tuple[str, Document | DocumentError]]:
    try:
        f = open(name, "rb")
    except OSError as e:
        yield name, DocumentError(READ_ERROR, f"{name}: could not be read ({e.strerror or e})")
        return
    with f:
        index = 0
        for raw in f:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as e:
                rec_name = record_name(name, index)
                yield rec_name, DocumentError(BAD_RECORD, f"{rec_name}: not valid JSON ({e})")
            else:
                yield _record(name, index, record, text_column, id_column, max_chars)
            index += 1


def _read_parquet_table(name: str, text_column: str, id_column: str | None,
                        max_chars: int) -> Iterator[tuple[str, Document | DocumentError]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(name)
        names = pf.schema_arrow.names
    except Exception as e:  # noqa: BLE001 - any pyarrow failure means "not a readable Parquet file"
        yield name, DocumentError(CORRUPT_DOCUMENT, f"{name}: not a readable Parquet file ({e})")
        return
    if text_column not in names:
        yield name, DocumentError(NO_TEXT, f"{name}: has no {text_column!r} column (columns: {', '.join(names)})")
        return
    columns = [text_column] + ([id_column] if id_column and id_column in names else [])
    index = 0
    try:
        for batch in pf.iter_batches(columns=columns, batch_size=1024):
            for record in batch.to_pylist():
                yield _record(name, index, record, text_column, id_column, max_chars)
                index += 1
    except Exception as e:  # noqa: BLE001 - a corrupt row group: report it, keep the records already read
        yield name, DocumentError(CORRUPT_DOCUMENT, f"{name}: unreadable after record {index} ({e})")


def read_input(path: str | os.PathLike, text_column: str = "text",
               id_column: str | None = "id") -> Iterator[tuple[str, Document | DocumentError]]:
    """Every input of one path: one document for a file, one per record for a table. Never raises DocumentError."""
    if is_table(path):
        yield from read_table(path, text_column, id_column)
        return
    try:
        yield str(path), read_document(path)
    except DocumentError as e:
        yield str(path), e
