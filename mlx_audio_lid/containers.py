"""What a file's container promises about its length, read from the bytes without decoding.

miniaudio counts the frames it finds, so a file cut short decodes to a shorter clip without a
word. These readers return what the container itself declares, for `AudioStream` to compare:
- WAV: the `data` chunk's size over the `fmt ` chunk's block size (PCM, float and extensible
  alike; RF64 and the 0 / 0xFFFFFFFF "size unknown" placeholders of streamed WAVs give None);
- Ogg: whether the last page is complete and carries the end-of-stream flag, which every
  finished Ogg stream ends with (the format has no frame count in its header);
- FLAC (STREAMINFO) and MP3 with a Xing/Info header declare a frame count that miniaudio
  reports itself. An MP3 without that header cut at a frame boundary cannot be told from a
  shorter file.
"""

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO, Optional, Union

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
