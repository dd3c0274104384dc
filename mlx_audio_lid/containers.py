"""What a file's container promises about its length, read from the bytes without decoding.

miniaudio counts the frames it finds, so a file cut short decodes to a shorter clip without a
word. These readers return what the container itself declares, for `AudioStream` to compare:
- WAV: the `data` chunk's size over the `fmt ` chunk's block size (PCM, float and extensible
  alike; RF64 and the 0 / 0xFFFFFFFF "size unknown" placeholders of streamed WAVs give None);
- Ogg: whether the last page is complete and carries the end-of-stream flag, which every
  finished Ogg stream ends with (the format has no frame count in its header); and, before
  miniaudio sees the file, whether its pages follow one another (`ogg_damage`);
- FLAC (STREAMINFO) and MP3 with a Xing/Info header declare a frame count that miniaudio
  reports itself. An MP3 without that header cut at a frame boundary cannot be told from a
  shorter file.
"""

import io
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Optional, Tuple, Union

OGG_MAX_PAGE = 27 + 255 + 255 * 255  # header + segment table + body: the largest Ogg page
OGG_END_OF_STREAM = 0x04  # header_type flag on a stream's last page
WAV_SIZE_UNKNOWN = (0, 0xFFFFFFFF)  # data sizes streaming writers leave before the length is known


def _open(source: Union[Path, bytes]) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def wav_declared_frames(source: Union[Path, bytes]) -> Optional[int]:
    """Frames the `data` chunk declares, or None where the header does not say."""
    with _open(source) as file:
        riff = file.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            return None  # RF64 / RIFX / not a WAV: no check
        block_align = None
        while True:
            header = file.read(8)
            if len(header) < 8:
                return None  # no data chunk: miniaudio reports that itself
            chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"fmt ":
                fmt = file.read(size)
                if len(fmt) < 14:
                    return None
                block_align = struct.unpack("<H", fmt[12:14])[0]
                file.seek(size & 1, os.SEEK_CUR)  # chunks are padded to an even size
            elif chunk == b"data":
                if not block_align or size in WAV_SIZE_UNKNOWN:
                    return None
                return size // block_align
            else:
                file.seek(size + (size & 1), os.SEEK_CUR)


def ogg_is_complete(source: Union[Path, bytes]) -> bool:
    """True when the last Ogg page is whole and flags the end of the stream."""
    with _open(source) as file:
        file.seek(0, os.SEEK_END)
        end = file.tell()
        file.seek(max(0, end - OGG_MAX_PAGE))
        tail = file.read()
    start = tail.rfind(b"OggS")
    if start < 0 or len(tail) - start < 27:
        return False
    header_type, segments = tail[start + 5], tail[start + 26]
    table = tail[start + 27 : start + 27 + segments]
    if len(table) < segments:
        return False
    page_end = start + 27 + segments + sum(table)
    return page_end <= len(tail) and bool(header_type & OGG_END_OF_STREAM)


# Ogg's page checksum is CRC-32 (polynomial 0x04C11DB7) MSB-first with no initial or final xor;
# zlib's is the same polynomial LSB-first, so bytes and result are bit-reversed around it (C speed).
_REVERSED_BYTES = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_checksum(page: bytes) -> int:
    """The CRC of an Ogg page whose checksum field (bytes 22-25) is zeroed."""
    lsb_first = zlib.crc32(page.translate(_REVERSED_BYTES), 0xFFFFFFFF) ^ 0xFFFFFFFF  # no initial xor
    return int(f"{lsb_first:032b}"[::-1], 2)


def ogg_damage(source: Union[Path, bytes]) -> Optional[Tuple[int, str]]:
    """Where an Ogg file stops being a chain of whole, intact pages: (byte offset, what is wrong).

    stb_vorbis (miniaudio's Vorbis decoder) checks no page checksum while it decodes, and a
    damaged setup header crashes the process (found by the fuzzer: an Ogg file spliced with
    another file's bytes inside its second page killed miniaudio's probe with SIGSEGV); damaged
    audio pages decode to wrong samples without a word. So before miniaudio sees the file: each
    page starts where the one before ends, its checksum matches, and the first stream's pages
    are numbered one after another (pages of chained or multiplexed streams are checked, not
    numbered). A file cut short, its last page running past the end, is left to
    `ogg_is_complete`. None when nothing is wrong, and for a file that is not Ogg.
    """
    with _open(source) as file:
        at, serial, expected = 0, None, None
        while True:  # one page at a time: memory stays at one page for any file length
            header = file.read(27)
            if at == 0 and header[:4] != b"OggS":
                return None  # not an Ogg file
            if len(header) < 27:
                return None  # the end, or a file cut short
            if header[:4] != b"OggS" or header[4] != 0:
                return at, "no Ogg page starts where the one before ends"
            table = file.read(header[26])
            body = file.read(sum(table))
            if len(table) < header[26] or len(body) < sum(table):
                return None
            page_serial, sequence, checksum = struct.unpack("<III", header[14:26])
            if ogg_checksum(header[:22] + bytes(4) + header[26:] + table + body) != checksum:
                return at, f"page {sequence}'s checksum does not match its bytes"
            if serial is None:
                serial, expected = page_serial, sequence
            if page_serial == serial:
                if sequence != expected:
                    return at, f"page {sequence} of the stream follows page {expected - 1}"
                expected += 1
            at += 27 + len(table) + len(body)
