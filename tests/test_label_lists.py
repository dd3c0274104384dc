"""The full label lists of VoxLingua107 and Whisper map to ISO 639-3 codes and English names, none unknown."""

import ast
from pathlib import Path
from types import SimpleNamespace

import langcodes
import mlx_audio
import pytest

import mlx_audio_lid as lid
from mlx_audio_lid.labels import candidate_indices, describe_labels, model_languages
from mlx_audio_lid.whisper_languages import LANGUAGES_BEFORE_LARGE_V3, WHISPER_LANGUAGES

# The tiny fixture carries the published label_encoder.txt of speechbrain/lang-id-voxlingua107-ecapa.
VOXLINGUA107 = Path(__file__).resolve().parent / "fixtures" / "ecapa" / "voxlingua107_tiny"

# The codes the lists spell in ways a mapping can get wrong: withdrawn (iw, jw), three-letter
# (haw, ceb, war, sco), macrolanguages (zh, no, ms), and ones langcodes would rename (tl).
SHARED = {
    "jw": ("jav", "Javanese"), "haw": ("haw", "Hawaiian"), "sa": ("san", "Sanskrit"),
    "zh": ("zho", "Chinese"), "nn": ("nno", "Norwegian Nynorsk"), "no": ("nor", "Norwegian"),
    "sr": ("srp", "Serbian"), "sd": ("snd", "Sindhi"), "ln": ("lin", "Lingala"), "ba": ("bak", "Bashkir"),
    "lb": ("ltz", "Luxembourgish"), "tl": ("tgl", "Tagalog"), "ms": ("msa", "Malay"), "sn": ("sna", "Shona"),
}


def _assert_all_known(infos, count):
    assert len(infos) == count
    for info in infos.values():
        language = langcodes.Language.get(info.code)
        assert len(info.code) == 3 and language.is_valid() and info.code != "und", info
        assert info.name and info.name != info.label, info
    assert len({info.code for info in infos.values()}) == count  # no two labels are one language


@pytest.fixture(scope="module")
def voxlingua107():
    return lid.load(VOXLINGUA107)


def test_voxlingua107_all_107_labels(voxlingua107):
    infos = model_languages(voxlingua107)
    _assert_all_known(infos, 107)
    codes = list(infos)
    assert codes == sorted(codes) and codes[94] == "th"  # the model card's example: index 94, 'th: Thai'
    expected = {**SHARED, "iw": ("heb", "Hebrew"), "ceb": ("ceb", "Cebuano"), "war": ("war", "Waray"),
                "sco": ("sco", "Scots"), "km": ("khm", "Central Khmer"), "ia": ("ina", "Interlingua")}
    assert {code: (infos[code].code, infos[code].name) for code in expected} == expected


def test_whisper_all_100_languages():
    assert len(WHISPER_LANGUAGES) == 100 and LANGUAGES_BEFORE_LARGE_V3 == 99 and WHISPER_LANGUAGES[99] == "yue"
    infos = describe_labels(WHISPER_LANGUAGES)
    _assert_all_known(infos, 100)
    expected = {**SHARED, "he": ("heb", "Hebrew"), "yue": ("yue", "Cantonese"), "my": ("mya", "Burmese"),
                "ht": ("hat", "Haitian Creole"), "en": ("eng", "English")}
    assert {code: (infos[code].code, infos[code].name) for code in expected} == expected


def test_whisper_list_is_mlx_audios():
    """The copy here equals mlx-audio's tokenizer table, read as text (importing it costs seconds)."""
    tokenizer = Path(mlx_audio.__file__).parent / "stt" / "models" / "whisper" / "tokenizer.py"
    if not tokenizer.exists():
        pytest.skip(f"this mlx-audio has no {tokenizer.relative_to(tokenizer.parents[4])}")
    table = next(ast.literal_eval(node.value) for node in ast.parse(tokenizer.read_text()).body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "LANGUAGES")
    assert tuple(table) == WHISPER_LANGUAGES


@pytest.mark.parametrize("term, labels", [
    ("zh", ["zh"]), ("cmn", ["zh"]), ("Mandarin Chinese", ["zh"]), ("yue", ["yue"]), ("Cantonese", ["yue"]),
    ("iw", ["he"]), ("jav", ["jw"]), ("Tagalog", ["tl"]), ("nno", ["nn"]), ("haw", ["haw"]),
])
def test_candidates_over_whisper_labels(term, labels):
    """Mandarin means Whisper's `zh`, not also its separate Cantonese; withdrawn codes still match."""
    whisper = SimpleNamespace(labels=WHISPER_LANGUAGES, label_names=("",) * len(WHISPER_LANGUAGES))  # no names, as Whisper ships
    assert [WHISPER_LANGUAGES[i] for i in candidate_indices(whisper, term)] == labels


@pytest.mark.parametrize("term, labels", [("cmn", ["zh"]), ("he", ["iw"]), ("Javanese", ["jw"]), ("fil", ["tl"])])
def test_candidates_over_voxlingua107_labels(voxlingua107, term, labels):
    assert [voxlingua107.labels[i] for i in candidate_indices(voxlingua107, term)] == labels
