"""What a file really is, from its first bytes, whatever its name says.

Binary signatures come from puremagic; zips are told apart (docx, xlsx, pptx, odt, ods, odp) by
their member names, reading only the central directory, which is sized before it is parsed; OLE2
compound files (doc, xls, ppt, msg, Altium's PcbDoc ...) by the streams they hold (ole.py); text
is recognised by decoding the first bytes. Names are short and stable: rules test them as `file_type`.
"""

from __future__ import annotations

import codecs
import lzma
import zlib
from typing import BinaryIO

import puremagic

from agent.content import mime, ole
from agent.content.budget import Refused
from agent.content.tnef import SIGNATURE as TNEF_SIGNATURE
from agent.content.zipread import BoundedZip

HEAD_BYTES = 8192
MIN_TEXT_BYTES = 16  # a head holding NULs or control bytes is text only with at least this much else
PROBE_BYTES = 512  # of a head, decoded first without its NULs (a binary's fail at once)

# the extensions each type is stored under; any other is a type_mismatch
EXTENSIONS: dict[str, frozenset[str]] = {
    name: frozenset(exts.split())
    for name, exts in {
        "pdf": "pdf ai",
        "zip": "zip jar war ear apk aab epub whl nupkg xpi kmz vsix crx ipa",
        "docx": "docx docm dotx dotm",
        "xlsx": "xlsx xlsm xltx xltm xlam",
        "pptx": "pptx pptm potx potm ppsx ppsm",
        "odt": "odt ott",
        "ods": "ods ots",
        "odp": "odp otp",
        # legacy Office, and WPS Office's own names for the same formats
        "doc": "doc dot wps wpt",
        "xls": "xls xlt xla et ett",
        "ppt": "ppt pot pps ppa dps dpt",
        "ooxml_encrypted": "docx docm dotx dotm xlsx xlsm xltx xltm xlsb pptx pptm potx potm ppsx ppsm",
        "msg": "msg oft",
        "msi": "msi msp msm",
        "vsd": "vsd vss vst",
        "pcbdoc": "pcbdoc",
        "schdoc": "schdoc",
        "pcblib": "pcblib",
        "schlib": "schlib",
        "7z": "7z",
        "gzip": "gz tgz svgz",
        "bzip2": "bz2 tbz tbz2",
        "xz": "xz txz",
        "zstd": "zst tzst zstd",
        "lz4": "lz4 tlz4",
        "lzma": "lzma tlz",
        "zlib": "zlib zz",
        "tar": "tar",
        "rar": "rar",
        "png": "png",
        "jpeg": "jpg jpeg jpe jfif",
        "gif": "gif",
        "bmp": "bmp dib",
        "tiff": "tif tiff",
        "dwg": "dwg",
        "dxf": "dxf",
        "eml": "eml mht mhtml",
        "tnef": "dat tnef",
        "emlx": "emlx",
        "mbox": "mbox mbx",
        "exe": "exe dll sys scr ocx cpl drv efi mui",
        "elf": "so ko o elf bin run axf",
    }.items()
}
EXTENSIONS["elf"] |= {""}  # ELF programs usually have no extension at all
EXTENSIONS["zlib"] |= {""}  # git's objects are zlib streams named by their hash
# text may be named almost anything (.csv, .log, .py, none); it is a mismatch only under a name
# that a binary type claims. Altium also saves its documents as text, and .msg names text too.
_ALSO_TEXT = {"dxf", "eml", "emlx", "mbox", "msg", "pcbdoc", "schdoc", "pcblib", "schlib", "tnef"}  # .dat: any data
BINARY_EXTENSIONS = frozenset().union(*(e for t, e in EXTENSIONS.items() if t not in _ALSO_TEXT)) - {""}
# an OLE2 file of no known kind (Thumbs.db, a CAD part, an old project file) may have any name but
# one that a known type claims; Altium's signatures come from public format notes, not from every
# version of Altium Designer, so an unrecognised .PcbDoc is not called a mismatch
CLAIMED_EXTENSIONS = frozenset().union(*EXTENSIONS.values()) - {"", "pcbdoc", "schdoc", "pcblib", "schlib", "dat"}

# puremagic's extension -> our name; its first (most confident) mapped match wins
_MAGIC_NAMES = {
    ".pdf": "pdf", ".7z": "7z", ".gz": "gzip", ".bz2": "bzip2", ".tar.bz2": "bzip2", ".bzip2": "bzip2",
    ".xz": "xz", ".tar": "tar", ".rar": "rar", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg",
    ".jfif": "jpeg", ".gif": "gif", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff", ".dwg": "dwg",
    ".exe": "exe", ".dll": "exe",
}  # fmt: skip
# where the types of _MAGIC_NAMES start (tar: "ustar" at 257, checked beside these)
_SIGNATURES = (
    b"%PDF", b"7z\xbc\xaf\x27\x1c", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"Rar!\x1a\x07", b"\x89PNG",
    b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"AC1", b"MZ",
)  # fmt: skip
ZSTD_SIGNATURE = b"\x28\xb5\x2f\xfd"  # a Zstandard frame (.zst, tar --zstd, Windows 11's tar.zst)
LZ4_SIGNATURES = (b"\x04\x22\x4d\x18", b"\x02\x21\x4c\x18")  # an LZ4 frame (lz4, tar --lz4), its legacy one (lz4 -l)
HEAD_DECODED_BYTES = 64 * 1024  # what a headerless stream's head may decode to while it is typed
TRIAL_DICTIONARY_BYTES = 1024 * 1024  # the dictionary an LZMA head is decoded with while it is typed
# signatures so short that a text file can start with them ("BM", "MZ", "AC10")
_WEAK = {"bmp", "exe", "dwg"}
_ODF = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}
_OOXML = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}
_CONTROL = frozenset(range(32)) - {9, 10, 12, 13, 27}
_CONTROL_BYTES = bytes(sorted(_CONTROL))


def detect(path: str) -> str | None:
    """The type of the file at path, or None when unknown. OSError when it cannot be read."""
    with open(path, "rb") as f:
        return detect_file(f)


def detect_file(f: BinaryIO) -> str | None:
    return detect_opened(f)[0]


def detect_opened(f: BinaryIO) -> tuple[str | None, BoundedZip | None]:
    """detect_file(f), and the zip it opened to tell (its central directory read and checked,
    within BoundedZip's limits), so extraction reads the members from it instead of reading and
    parsing the directory again (a deck's 800 entries: some 6 ms); None when it opened none."""
    head = f.read(HEAD_BYTES)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(f)
    return _head_type(f, head), None


def _head_type(f: BinaryIO, head: bytes) -> str | None:
    if head.startswith(ole.SIGNATURE):
        f.seek(0)
        return ole.container_type(f)
    if head.startswith(b"\x7fELF"):
        return "elf"
    if head.startswith(b"AutoCAD Binary DXF"):
        return "dxf"
    if head.startswith(TNEF_SIGNATURE):
        return "tnef"  # Outlook's winmail.dat
    if (frames := _frame_type(head)) is not None:
        return frames
    magic = _magic(head) if _may_have_magic(head) else None
    if magic and not (magic in _WEAK and looks_like_text(head)):
        return magic
    if looks_like_text(head):
        return "dxf" if _is_dxf(head) else mime.mail_type(head) or "text"
    return _headerless_stream(head)


def _frame_type(head: bytes) -> str | None:
    """"zstd" or "lz4" for a file of their frames: its first frame's magic, past any skippable
    frames (which both formats have, with the same magic numbers: a file starting with one whose
    end lies past the head is taken for zstd, whose reader then says whether it is)."""
    at = 0
    while head[at + 1 : at + 4] == b"\x2a\x4d\x18" and 0x50 <= head[at] <= 0x5F and len(head) >= at + 8:
        at += 8 + int.from_bytes(head[at + 4 : at + 8], "little")
        if at >= len(head):
            return "zstd"
    if head.startswith(ZSTD_SIGNATURE, at):
        return "zstd"
    if head.startswith(LZ4_SIGNATURES, at):
        return "lz4"
    return None


def _headerless_stream(head: bytes) -> str | None:
    """"zlib" or "lzma" for a compressed stream with no signature of its own: a zlib stream (git's
    objects, a .zz) or an LZMA one in the format of the old lzma tool (.lzma). Told by their
    headers' checks (zlib's two bytes are a multiple of 31; LZMA's properties and dictionary size
    are of those its tools write: a power of two, or one and a half), then by decoding the head
    without an error, to at most HEAD_DECODED_BYTES (random bytes after such a start decode to a
    few bytes, then to an invalid code or distance; a bomb's head stops there). A printer's
    settings (printerSettings1.bin in a pptx) pass an LZMA header's checks: they do not decode."""
    if len(head) < 8:  # the shortest zlib stream
        return None
    if head[0] in (0x08, 0x18, 0x28, 0x38, 0x48, 0x58, 0x68, 0x78) and (head[0] << 8 | head[1]) % 31 == 0 and not head[1] & 0x20:
        try:
            zlib.decompressobj().decompress(head, HEAD_DECODED_BYTES)  # (empty blocks first decode to nothing)
            return "zlib"
        except zlib.error:
            return None
    dictionary = int.from_bytes(head[1:5], "little")
    power = dictionary & (dictionary - 1) == 0 or (dictionary // 3) & (dictionary // 3 - 1) == 0 and dictionary % 3 == 0
    if len(head) > 13 and head[0] < 225 and dictionary >= 4096 and power and head[5:13] != b"\0" * 8:
        # the decoder takes its dictionary's size at once (xz -9's 64 MB, a crafted header's 1.5 GB),
        # but what is decoded here reaches back no further than itself: a small one decodes it alike
        trial = head[:1] + min(dictionary, TRIAL_DICTIONARY_BYTES).to_bytes(4, "little") + head[5:]
        try:
            return "lzma" if lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(trial, HEAD_DECODED_BYTES) else None
        except lzma.LZMAError:
            return None
    return None


def _may_have_magic(head: bytes) -> bool:
    """Whether the head holds a signature of a type in _MAGIC_NAMES, where puremagic would look.

    puremagic tries every signature it knows (0.25-1 ms a file); most files of an index build are
    text or unknown binaries, for which that is all cost. The gate only decides whether to ask.
    Every signature puremagic has for these types sits at the start of the file (PDF also after a
    CRLF), tar's at 257; one found further in never made puremagic answer, and a 2-byte one
    ("BM", "MZ") turns up in the first KiB of one random file in twenty."""
    return head.startswith(_SIGNATURES) or head[2:6] == b"%PDF" or head[257:262] == b"ustar"


def _magic(head: bytes) -> str | None:
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    for m in matches:
        if m.extension.lower() in _MAGIC_NAMES:
            return _MAGIC_NAMES[m.extension.lower()]
    return None


def _zip_type(f: BinaryIO) -> tuple[str, BoundedZip | None]:
    try:
        z = BoundedZip(f)
    except Refused:
        return "zip", None  # extraction opens it again, and says why it is refused
    names = z.names()
    if "[Content_Types].xml" in names:
        for prefix, kind in _OOXML.items():
            if any(n.startswith(prefix) for n in names):
                return kind, z
    if "mimetype" in names:
        mimetype = z.head("mimetype", 128).strip()
        for prefix, kind in _ODF.items():
            if mimetype.startswith(prefix):  # templates: ...text-template is still odt
                return kind, z
    return "zip", z


def looks_like_text(head: bytes) -> bool:
    """UTF-8, UTF-16 with a BOM or GB18030, once NULs and other control bytes are left out, if
    they are not too many.

    A NUL or a control byte is no sign of a binary when the rest reads as text: one NUL, or a
    hundred \\x01, put before a classified text made it untyped, so it was neither fingerprinted
    nor searched for markings, while an editor, `less` or `strings` still show the text. So they
    are left out of the test (text.decode leaves NULs out; the others are no letters, which
    fingerprints and detectors skip). Limits: other control bytes at most a quarter of the head
    (a binary's structure is full of them), NULs and controls together at most three quarters
    (UTF-16 without a byte-order mark, Latin text every other byte NUL, reads as its text; a head
    mostly NULs, a sparse image or a database page, is no text). A head whose first 512 bytes
    do not decode without their NULs stops there: random and compressed bytes fail at once."""
    if not head:
        return False
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = codecs.getincrementaldecoder("utf-16")().decode(head[: len(head) // 2 * 2])
        except UnicodeDecodeError:
            return False
        return _few_controls(text.encode("utf-8", "replace"))
    probe = head[:PROBE_BYTES].replace(b"\0", b"")
    if len(probe) >= MIN_TEXT_BYTES and not _decodes(probe):
        return False  # most binary heads stop here, for a microsecond or two
    text = head.replace(b"\0", b"")  # what text.decode reads: NULs left out, other controls kept
    controls = len(text) - len(text.translate(None, _CONTROL_BYTES))
    if controls * 4 > len(head) or len(text) * 4 < len(head) or (len(text) < len(head) and len(text) < MIN_TEXT_BYTES):
        return False
    return _decodes(text)


_GB18030 = codecs.getincrementaldecoder("gb18030")


def _decodes(data: bytes) -> bool:
    """Whether data reads as UTF-8 or GB18030 (it may end in the middle of a character)."""
    try:
        codecs.utf_8_decode(data, "strict", False)
        return True
    except UnicodeDecodeError:
        pass
    try:
        _GB18030().decode(data, final=False)
        return True
    except UnicodeDecodeError:
        return False


def _few_controls(data: bytes) -> bool:
    """At most 1% of the bytes are controls (a byte-by-byte count of an 8 KiB head took 0.5 ms a
    file: translate deletes them in C)."""
    return (len(data) - len(data.translate(None, _CONTROL_BYTES))) * 100 <= len(data)


def _is_dxf(head: bytes) -> bool:
    tokens = head[:256].decode("latin-1").split()
    return tokens[:2] == ["0", "SECTION"] or tokens[:1] == ["999"]


def type_mismatch(file_type: str | None, extension: str | None) -> bool | None:
    """Whether the name hides the type: docx content named holiday.jpg. None when unknown."""
    if file_type is None or extension is None:
        return None
    ext = extension.lower().lstrip(".")
    if file_type in ("text", "eml", "emlx", "mbox"):  # saved mail is text: named as a text file, it hides nothing
        return ext in BINARY_EXTENSIONS
    if file_type == "ole2":
        return ext in CLAIMED_EXTENSIONS
    if file_type not in EXTENSIONS:
        return None
    return ext not in EXTENSIONS[file_type]
