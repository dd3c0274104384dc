"""Tiny source folders of every registered family, for the contract suite (tests/test_contract.py).

A family joins the suite with one entry here: its model_type, and per variant a function that
writes a tiny model in the family's published layout into a new folder (or copies a committed
fixture there) and returns the folder. The suite fails for a registered family without one.
"""

import conversion_sources
from references import whisper as reference_whisper

SOURCES = {
    "wav2vec_cls": {
        "mms-lid": conversion_sources.tiny_mms,  # transformers' own checkpoint, 320x downsampling
    },
    "ecapa_lid": {
        "voxlingua107": lambda folder: conversion_sources.speechbrain("speechbrain/lang-id-voxlingua107-ecapa", folder),
        "commonlanguage": lambda folder: conversion_sources.speechbrain("speechbrain/lang-id-commonlanguage_ecapa", folder),
    },
    "whisper_lid": {
        "faster-whisper": reference_whisper.tiny_ctranslate2,  # CTranslate2's own conversion of a tiny transformers Whisper
    },
}
