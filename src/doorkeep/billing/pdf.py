"""The PDF toolkit of billing's documents (``documents.py``): fonts and the
characters they can write, an A4 page writer with running head, footer and
tables that run over pages, and the Swiss QR-bill payment part.

Fonts. A document whose texts are all in Windows-1252 (every letter of
Switzerland's languages and most of Western Europe's: é, ü, ß, ç, Š, Ž, €)
is set in the PDF core font Helvetica, which costs nothing to embed. A
document with any other letter in it (a name such as Đurić, Łukasz or
Ştefan, or in Greek or Cyrillic) embeds DejaVu Sans, regular and bold, so
that every name prints as written. DejaVu Sans is taken from the system's
fonts (``/usr/share/fonts/truetype/dejavu`` on Debian: the fonts-dejavu-core
package) or from a copy shipped in an installed Python package
(matplotlib's); it is cut once per process, to a private temporary copy
without hinting, to the Latin letters of Europe's names or, when a text
needs more, to Latin, Greek and Cyrillic: the fewer glyphs, the faster
fpdf2 reads the font for each PDF. Without DejaVu Sans such letters are
transliterated for the core font (ć -> c, Ł -> L, Œ -> OE) and anything
else is printed as ``?``.

The payment part. ``qrbill`` draws the QR-bill as SVG (receipt, payment
part, perforation lines and scissors), which fpdf2 places at the foot of the
page. Two changes keep it fast and right: the QR code's modules are drawn
by fpdf2 as rectangles (each run of dark modules in a row, merged with the
same run in the rows below) under qrbill's drawing, which is written
without its white background so that its Swiss cross lies on them (qrbill
writes one SVG path with a square a module, which fpdf2 needs some 40 ms to
read); and its text is filled black explicitly. The payment part's text is
set in Helvetica, a font the QR-bill style guide names, in Latin-1 (é, ü,
ß stay; other letters are transliterated there); the QR code's data keeps
every character the Swiss payment standard allows (Latin-1, Latin
Extended-A, Ș ș Ț ț, €), and others are transliterated, as banks refuse
them."""

from __future__ import annotations

import atexit
import builtins
import functools
import importlib.util
import io
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import qrbill.bill as qrbill_layout  # type: ignore[import-untyped]
import qrcode  # type: ignore[import-untyped]
import svgwrite  # type: ignore[import-untyped]
from django.utils.translation import gettext as _
from fpdf import FPDF
from qrbill import QRBill

# --- characters --------------------------------------------------------------------------------

# Letters NFKD does not take apart, and punctuation, spelt in ASCII.
_SPELLING = {
    "Đ": "D",
    "đ": "d",
    "Ł": "L",
    "ł": "l",
    "Ħ": "H",
    "ħ": "h",
    "ı": "i",
    "Œ": "OE",
    "œ": "oe",
    "€": "EUR",
    "–": "-",
    "—": "-",
    "‐": "-",
    "−": "-",
    "‘": "'",
    "’": "'",
    "‚": ",",
    "“": '"',
    "”": '"',
    "„": '"',
    "…": "...",
    "•": "-",
    "\u202f": " ",
}


def _fold(text: str, fits: Callable[[str], bool]) -> str:
    """``text`` with each character that does not fit replaced by its
    letters without their accents, its ASCII spelling, or ``?``."""
    out = []
    for char in text:
        if char.isascii() or fits(char):
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if base and all(c.isascii() or fits(c) for c in base):
            out.append(base)
        else:
            out.append(_SPELLING.get(char, "?"))
    return "".join(out)


def _in(encoding: str) -> Callable[[str], bool]:
    def fits(char: str) -> bool:
        try:
            char.encode(encoding)
        except UnicodeEncodeError:
            return False
        return True

    return fits


_LATIN1 = _in("latin-1")
_WESTERN = _in("cp1252")


def _folded(text: str, encoding: str, fits: Callable[[str], bool]) -> str:
    if text.isascii():
        return text
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return _fold(text, fits)
    return text


def latin1(text: str) -> str:
    """``text`` in Latin-1: é, ü, ß stay; ć -> c, Ł -> L, € -> EUR."""
    return _folded(text, "latin-1", _LATIN1)


def western(text: str) -> str:
    """``text`` in Windows-1252, what the core fonts write: é, ü, ß, Š, €
    stay; ć -> c, Ł -> L."""
    return _folded(text, "cp1252", _WESTERN)


# The Swiss Payments Code's characters beyond Latin-1: Latin Extended-A,
# Ș ș Ț ț and €.
_SPC_MORE = frozenset([chr(c) for c in range(0x100, 0x180)] + ["Ș", "ș", "Ț", "ț", "€"])


def spc_text(text: str) -> str:
    """``text`` on one line, in the characters a QR-bill may carry."""
    text = " ".join(text.split())
    return text if text.isascii() else _fold(text, lambda c: _LATIN1(c) or c in _SPC_MORE)


# --- fonts -------------------------------------------------------------------------------------

FAMILY = "doorkeepsans"
# The characters a document's texts need decide its font: the core Helvetica
# (Windows-1252), or DejaVu Sans cut to the Latin letters of Europe's names
# (Windows-1252, Latin Extended-A, Ș ș Ț ț: the Swiss Payments Code's, and
# punctuation), or cut wider (Latin Extended-B and Additional, Greek,
# Cyrillic). The fewer glyphs, the faster fpdf2 reads and embeds the font.
Charset = Literal["core", "latin", "wide"]
_LATIN_KEEP = (
    (0x20, 0x7E),  # Basic Latin
    (0xA0, 0x17F),  # Latin-1 Supplement, Latin Extended-A
    (0x192, 0x192),  # and what else Windows-1252 has: ƒ
    (0x218, 0x21B),  # Ș ș Ț ț
    (0x2C6, 0x2C7),  # modifier circumflex and caron
    (0x2D8, 0x2DD),  # breve, dot, ring, ogonek, tilde, double acute
    (0x2010, 0x203A),  # dashes, quotes, bullet, ellipsis, per mille, guillemets
    (0x20AC, 0x20AC),  # €
    (0x2122, 0x2122),  # ™
    (0x2212, 0x2212),  # minus
)
_WIDE_KEEP = (
    (0x20, 0x7E),  # Basic Latin
    (0xA0, 0x24F),  # Latin-1 Supplement, Latin Extended-A and -B
    (0x2B0, 0x2FF),  # Spacing Modifier Letters
    (0x370, 0x3FF),  # Greek
    (0x400, 0x4FF),  # Cyrillic
    (0x1E00, 0x1EFF),  # Latin Extended Additional
    (0x2000, 0x206F),  # General Punctuation
    (0x20A0, 0x20BF),  # Currency Symbols
    (0x2100, 0x214F),  # Letterlike Symbols
    (0x2212, 0x2212),  # minus
)
_KEEP: dict[str, tuple[tuple[int, int], ...]] = {"latin": _LATIN_KEEP, "wide": _WIDE_KEEP}
_LATIN = frozenset(chr(c) for first, last in _LATIN_KEEP for c in range(first, last + 1))


def charset(texts: Iterable[str]) -> Charset:
    """The smallest of the character sets that holds every text."""
    need: Charset = "core"
    for text in texts:
        if not text or text.isascii():
            continue
        try:
            text.encode("cp1252")
        except UnicodeEncodeError:
            if not _LATIN.issuperset(text):
                return "wide"
            need = "latin"
    return need


_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/dejavu-sans-fonts",
    "/usr/local/share/fonts",
    "/usr/local/share/fonts/dejavu",
    "/Library/Fonts",
)
_FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")


def _font_dirs() -> Iterable[Path]:
    for name in _FONT_DIRS:
        yield Path(name)
    # A copy shipped in an installed package, found without importing it.
    spec = importlib.util.find_spec("matplotlib")
    for location in (spec.submodule_search_locations or []) if spec else []:
        yield Path(location) / "mpl-data" / "fonts" / "ttf"


@functools.cache
def unicode_fonts(cut: Charset = "wide") -> tuple[str, str] | None:
    """DejaVu Sans regular and bold cut to ``cut``'s characters (files in a
    private temporary directory of this process), or None without them."""
    for folder in _font_dirs():
        regular, bold = (folder / name for name in _FONT_FILES)
        if regular.is_file() and bold.is_file():
            try:
                return _cut(regular, cut), _cut(bold, cut)
            except Exception:  # noqa: S112 - a damaged font file: look further
                continue
    return None


@functools.cache
def _font_cache() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="doorkeep-fonts-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _cut(source: Path, cut: Charset) -> str:
    from fontTools import subset  # type: ignore[import-untyped]
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    options = subset.Options()
    options.hinting = False
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.drop_tables += ["FFTM", "GSUB", "GPOS", "kern", "MATH"]
    font = TTFont(str(source))
    subsetter = subset.Subsetter(options)
    keep = _KEEP.get(cut, _WIDE_KEEP)
    subsetter.populate(unicodes=[c for first, last in keep for c in range(first, last + 1)])
    subsetter.subset(font)
    target = _font_cache() / f"{cut}-{source.name}"
    font.save(str(target))
    return str(target)


# --- the page writer ---------------------------------------------------------------------------

PAGE_W = 210.0
PAGE_H = 297.0
LEFT = 20.0
RIGHT = 15.0
BODY_W = PAGE_W - LEFT - RIGHT
TOP = 15.0
FOOTER_Y = PAGE_H - 12.0
BOTTOM = PAGE_H - 20.0  # the last line of a page with a footer
PAYMENT_PART_H = 105.0
ABOVE_PAYMENT_PART = PAGE_H - PAYMENT_PART_H - 6.0  # the last line above it
ROW_H = 5.0
PAD = 1.0  # left and right of a cell's text
GREY = (90, 90, 90)
RULE = (160, 160, 160)
SHADE = (236, 236, 236)
BLACK = (0, 0, 0)


@dataclass(frozen=True)
class Column:
    title: str
    width: float
    align: Literal["L", "R"] = "L"


class _Pdf(FPDF):
    def __init__(self, writer: Writer) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.writer = writer

    def header(self) -> None:
        if self.page > 1:
            self.writer.running_head()

    def footer(self) -> None:
        if self.page not in self.writer.bare_pages:
            self.writer.page_footer()


class Writer:
    """A document being written: its font, text in the font's characters,
    positioned cells, tables that run over pages. Every page but the first
    has ``head`` at its top; every page but those with a payment part has
    ``foot`` and its number at its foot."""

    def __init__(
        self, *, title: str, head: str, foot: str, language: str, texts: Iterable[str]
    ) -> None:
        self.head = head
        self.foot = foot
        self.bare_pages: set[int] = set()
        self.pdf = pdf = _Pdf(self)
        pdf.set_auto_page_break(False)
        pdf.set_margins(LEFT, TOP, RIGHT)
        pdf.set_title(title)
        pdf.set_lang(language)
        pdf.set_creator("Doorkeep")
        need = charset([title, head, foot, *texts])
        fonts = unicode_fonts(need) if need != "core" else None
        self.unicode = fonts is not None
        if fonts is not None:
            pdf.add_font(FAMILY, "", fonts[0])
            pdf.add_font(FAMILY, "B", fonts[1])
            for font in pdf.fonts.values():
                # The cut fonts' bounding boxes are right: fontTools need not
                # unpack and recompile every glyph it embeds to recompute
                # them (a tenth of the PDF's time).
                font.ttfont.recalcBBoxes = False  # type: ignore[union-attr]
            self.family = FAMILY
        else:
            pdf.core_fonts_encoding = "cp1252"
            self.family = "helvetica"
        self.font(9)

    def t(self, text: str) -> str:
        """``text`` in the characters the document's font writes."""
        return text if self.unicode else western(text)

    def font(self, size: float, *, bold: bool = False) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)

    def color(self, rgb: tuple[int, int, int] = BLACK) -> None:
        self.pdf.set_text_color(*rgb)

    def cell(
        self,
        x: float,
        y: float,
        width: float,
        text: str,
        *,
        align: Literal["L", "R"] = "L",
        height: float = ROW_H,
    ) -> None:
        """``text`` on one line in the box (x, y, width, height), cut with an
        ellipsis when too long."""
        if not text:
            return
        pdf = self.pdf
        text = self.fit(self.t(text), width - 2 * PAD)
        baseline = y + height / 2 + 0.35 * pdf.font_size
        if align == "R":
            pdf.text(x + width - PAD - pdf.get_string_width(text), baseline, text)
        else:
            pdf.text(x + PAD, baseline, text)

    def fit(self, text: str, width: float) -> str:
        # No glyph is wider than 1.05 em: most texts need no measuring.
        if len(text) * self.pdf.font_size * 1.05 <= width:
            return text
        if self.pdf.get_string_width(text) <= width:
            return text
        ellipsis = "…"
        while text and self.pdf.get_string_width(text + ellipsis) > width:
            text = text[:-1]
        return text.rstrip() + ellipsis

    def paragraph(self, x: float, y: float, width: float, text: str) -> float:
        """Wrapped text; returns the y under it."""
        self.pdf.set_xy(x, y)
        self.pdf.multi_cell(width, 4.4, self.t(text), align="L")
        return self.pdf.get_y()

    def rule(
        self, y: float, *, x: float = LEFT, width: float = BODY_W, weight: float = 0.2
    ) -> None:
        self.pdf.set_draw_color(*RULE)
        self.pdf.set_line_width(weight)
        self.pdf.line(x, y, x + width, y)

    def shade(self, x: float, y: float, width: float, height: float) -> None:
        self.pdf.set_fill_color(*SHADE)
        self.pdf.rect(x, y, width, height, "F")

    # pages

    def running_head(self) -> None:
        self.font(7.5)
        self.color(GREY)
        self.cell(LEFT, 8.0, BODY_W, self.head, height=4.0)
        self.rule(12.5)
        self.color()

    def page_footer(self) -> None:
        self.font(7.5)
        self.color(GREY)
        self.cell(LEFT, FOOTER_Y, BODY_W * 0.75, self.foot, height=4.0)
        page = _("Page %(page)s of %(pages)s") % {"page": self.pdf.page, "pages": "{nb}"}
        # FPDF.cell, not FPDF.text: it fills in the number of pages ({nb}).
        self.pdf.set_xy(LEFT + BODY_W * 0.75, FOOTER_Y)
        self.pdf.cell(BODY_W * 0.25, 4.0, self.t(page), align="R")
        self.color()

    def new_page(self) -> float:
        """A new page; returns the y its content starts at."""
        self.pdf.add_page()
        return TOP if self.pdf.page == 1 else TOP + 2.0

    def output(self) -> bytes:
        return bytes(self.pdf.output())

    # tables

    def table_head(self, y: float, columns: Sequence[Column]) -> float:
        self.shade(LEFT, y, sum(c.width for c in columns), ROW_H)
        self.font(8, bold=True)
        x = LEFT
        for column in columns:
            self.cell(x, y, column.width, column.title, align=column.align)
            x += column.width
        self.font(8.5)
        return y + ROW_H + 0.5

    def table(
        self,
        y: float,
        columns: Sequence[Column],
        rows: Iterable[Sequence[str]],
        *,
        title: str = "",
    ) -> float:
        """Rows under a header row; a row that would pass the page's foot
        goes on a new page, under ``title`` (continued) and the header row
        again. Returns the y under the table."""
        y = self.table_head(y, columns)
        for row in rows:
            if y + ROW_H > BOTTOM:
                y = self.new_page()
                if title:
                    self.font(9, bold=True)
                    self.cell(LEFT, y, BODY_W, _("%(title)s (continued)") % {"title": title})
                    y += ROW_H + 1.0
                y = self.table_head(y, columns)
            x = LEFT
            for column, text in zip(columns, row, strict=True):
                self.cell(x, y, column.width, text, align=column.align)
                x += column.width
            y += ROW_H
        self.rule(y + 0.5)
        return y + 1.5

    def row(self, y: float, columns: Sequence[Column], texts: Sequence[str]) -> None:
        x = LEFT
        for column, text in zip(columns, texts, strict=True):
            self.cell(x, y, column.width, text, align=column.align)
            x += column.width


# --- the QR-bill payment part ------------------------------------------------------------------

QR_LANGUAGES = ("de", "fr", "it", "en")
# Where qrbill 1.2 (draw_bill) puts the QR code in its drawing of the
# payment part, which is 106 mm high (1 mm above the perforation for the
# scissors): 5 mm right of the 62 mm receipt, 61 user units (17.2 mm) from
# the top, 45.8 mm wide.
PART_SVG_H = float(qrbill_layout.BILL_HEIGHT)
QR_X = float(str(qrbill_layout.RECEIPT_WIDTH).removesuffix("mm")) + 5.0
QR_Y = 61 / float(qrbill_layout.MM_TO_UU)
QR_SIZE = 45.8


class _NoModules:
    """What ``qr_image`` gives qrbill: the QR code's width, and an empty path
    in place of its modules."""

    def __init__(self, width: int) -> None:
        self.width = width

    def save(self, stream: io.BytesIO) -> None:
        stream.write(b'<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0" /></svg>')


class PaymentPart(QRBill):
    """qrbill's QR-bill, drawn for fpdf2 (see the module's docstring)."""

    def qr_image(self) -> _NoModules:
        return _NoModules(len(self.qr_modules()))

    @functools.cached_property
    def _modules(self) -> list[list[bool]]:
        # As qrbill makes the code: error correction M, no quiet zone.
        code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
        code.add_data(self.qr_data())
        code.make(fit=True)
        matrix: list[list[bool]] = code.get_matrix()
        return matrix

    def qr_modules(self) -> list[list[bool]]:
        """The QR code's modules, row by row: True is dark."""
        return self._modules

    def as_svg(self, file_out: io.StringIO, full_page: bool = False) -> None:
        """qrbill's drawing of the payment part (not a full page), without
        its white background."""
        width, height = qrbill_layout.A4[0], f"{qrbill_layout.BILL_HEIGHT}mm"
        drawing = svgwrite.Drawing(
            size=(width, height),
            viewBox=f"0 0 {qrbill_layout.mm(width)} {qrbill_layout.mm(height)}",
            debug=False,
        )
        self.draw_bill(drawing, horiz_scissors=True)
        drawing.write(file_out)

    @builtins.property
    def title_font_info(self) -> dict[str, object]:
        return {**super().title_font_info, "fill": "black"}

    @builtins.property
    def font_info(self) -> dict[str, object]:
        return {**super().font_info, "fill": "black"}

    def head_font_info(self, part: str | None = None) -> dict[str, object]:
        return {**super().head_font_info(part), "fill": "black"}

    @builtins.property
    def proc_font_info(self) -> dict[str, object]:
        return {**super().proc_font_info, "fill": "black"}


def _rectangles(modules: list[list[bool]]) -> list[tuple[int, int, int, int]]:
    """The dark modules as rectangles (column, row, width, height): each run
    of dark modules in a row, merged with the same run in the rows below."""
    done: list[tuple[int, int, int, int]] = []
    open_runs: dict[tuple[int, int], int] = {}  # (column, width) -> first row
    for row, dark in enumerate([*modules, []]):
        runs: set[tuple[int, int]] = set()
        column = 0
        while column < len(dark):
            if dark[column]:
                start = column
                while column < len(dark) and dark[column]:
                    column += 1
                runs.add((start, column - start))
            column += 1
        for run in [run for run in open_runs if run not in runs]:
            first = open_runs.pop(run)
            done.append((run[0], first, run[1], row - first))
        for run in runs:
            open_runs.setdefault(run, row)
    return done


def draw_payment_part(writer: Writer, bill: PaymentPart) -> None:
    """The payment part at the foot of the current page, which then has no
    footer."""
    pdf = writer.pdf
    top = PAGE_H - PART_SVG_H
    modules = bill.qr_modules()
    size = QR_SIZE / len(modules)
    pdf.set_fill_color(*BLACK)
    for column, row, width, height in _rectangles(modules):
        # A hair taller than its modules: no seam between rows on screen.
        pdf.rect(
            QR_X + column * size, top + QR_Y + row * size, width * size, height * size + 0.02, "F"
        )
    svg = io.StringIO()
    bill.as_svg(svg)
    pdf.image(io.BytesIO(latin1(svg.getvalue()).encode()), x=0, y=top, w=PAGE_W)
    writer.bare_pages.add(pdf.page)
