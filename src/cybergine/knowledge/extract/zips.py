"""Reading a zip archive (a Word document) without trusting its directory.

A zip's directory states each member's size, and an attacker writes what they like there:
``zipfile.ZipFile.read`` inflates a member's whole compressed data in one call whatever
its stated size (1.5 MB became 1 GiB). Here members are read in small pieces, each piece
counted against a budget as it comes out of the decompressor."""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import Final

from cybergine.knowledge.extract.errors import Budget, CorruptDocument, DocumentTooLarge, megabytes

_PIECE: Final = 64 * 1024


def open_archive(data: bytes, *, max_entries: int) -> zipfile.ZipFile:
    """The archive, its directory read (a bounded structure: one entry per 46+ bytes of
    the file); more than ``max_entries`` members is refused."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    if len(archive.infolist()) > max_entries:
        archive.close()
        raise DocumentTooLarge(
            f"This Word document is made of more than {max_entries:,} parts, the limit.",
            limit="zip_entries",
            maximum=max_entries,
        )
    return archive


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *budgets: Budget) -> bytes:
    """The member's bytes, each piece counted against every budget as it is inflated.
    zipfile stops at the stated size and then checks the CRC, so a directory that
    understates is read only as far as it claims and then found out; one that overstates
    is found out here. Either way the archive is damaged (`CorruptDocument`)."""
    pieces: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as member:
            while piece := member.read(_PIECE):
                for budget in budgets:
                    budget.spend(len(piece))
                size += len(piece)
                pieces.append(piece)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise CorruptDocument() from exc
    if size != info.file_size:
        raise CorruptDocument()
    return b"".join(pieces)


def unpacked_budget(maximum: int) -> Budget:
    def refusal(limit: int) -> DocumentTooLarge:
        return DocumentTooLarge(
            f"This Word document unpacks to more than {megabytes(limit)} of text and "
            "markup, the limit. Split it into smaller files and upload them separately.",
            limit="unpacked_bytes",
            maximum=limit,
        )

    return Budget(maximum, refusal)
