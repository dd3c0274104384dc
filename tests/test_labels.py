"""Labels -> ISO 639-3 codes and English names; candidate languages, renormalised."""

import numpy as np
import pytest

import mlx_audio_lid as lid
from mlx_audio_lid.labels import candidate_indices, describe_labels, parse_language

from references import ecapa as reference_ecapa
from references import mms as ref
from references.signals import SYNTHETIC_VAD, speechlike_clips


@pytest.fixture(scope="module")
def mms(tmp_path_factory):  # ISO 639-3 labels: ara cmn eng spa fra rus deu
    folder = ref.save_published_layout(ref.build(ref.tiny_config(), seed=2), tmp_path_factory.mktemp("mms") / "m")
    return lid.load(folder)


@pytest.fixture(scope="module")
def voxlingua():  # VoxLingua107 codes: en, iw, jw, ...
    return lid.load(reference_ecapa.FIXTURES / "voxlingua107_tiny")


@pytest.fixture(scope="module")
def commonlanguage():  # English names: German, Chinese_Taiwan, ...
    return lid.load(reference_ecapa.FIXTURES / "commonlanguage_tiny")


def test_each_family_gets_iso_639_3_codes_and_english_names(voxlingua, commonlanguage):
    mms_style = describe_labels(("eng", "cmn", "deu"))
    assert [(i.code, i.name) for i in mms_style.values()] == [("eng", "English"), ("cmn", "Mandarin Chinese"), ("deu", "German")]
    vox = lid.labels.model_languages(voxlingua)
    assert (vox["iw"].code, vox["iw"].name) == ("heb", "Hebrew")  # withdrawn codes still map
    assert (vox["jw"].code, vox["jw"].name) == ("jav", "Javanese")
    assert (vox["tl"].code, vox["en"].code) == ("tgl", "eng")
    common = lid.labels.model_languages(commonlanguage)
    assert (common["German"].code, common["Chinese_Taiwan"].code, common["Hakha_Chin"].code) == ("deu", "zho", "cnh")
    assert common["Chinese_Taiwan"].name == "Chinese Taiwan"  # the model's own, more specific name
    assert describe_labels(("LABEL_0",))["LABEL_0"].code == "und"  # a placeholder names no language


@pytest.mark.parametrize("term, code", [("en", "eng"), ("eng", "eng"), ("English", "eng"), ("iw", "heb"),
                                        ("he", "heb"), ("Hebrew", "heb"), ("jw", "jav"), ("russian", "rus")])
def test_users_name_languages_by_either_code_or_english_name(term, code):
    assert parse_language(term).to_alpha3() == code


@pytest.mark.parametrize("term", ["xx", "Blorpian", ""])
def test_unknown_language_is_a_clear_error(term):
    with pytest.raises(ValueError, match="unknown language"):
        parse_language(term)


def _renormalised(full, labels):
    subset = np.array([full.probs[label] for label in labels])
    return dict(zip(labels, subset / subset.sum()))


@pytest.mark.parametrize("languages", [["en", "ru", "de"], "eng,rus,deu", ["English", "Russian", "German"]])
def test_candidates_renormalise_iso_639_3_labels(mms, languages):
    clip = speechlike_clips([16000], seed=5)[0]
    full = lid.identify(mms, clip, vad=SYNTHETIC_VAD)
    restricted = lid.identify(mms, clip, languages=languages, vad=SYNTHETIC_VAD)
    assert list(restricted.probs) == ["eng", "rus", "deu"]  # the model's label order
    expected = _renormalised(full, ["eng", "rus", "deu"])
    assert restricted.probs == pytest.approx(expected, abs=1e-5)
    assert restricted.language == max(expected, key=expected.get)


@pytest.mark.parametrize("languages", [["he", "jv", "en"], ["heb", "jav", "eng"], ["Hebrew", "Javanese", "English"]])
def test_candidates_renormalise_iso_639_1_labels(voxlingua, languages):
    clip = reference_ecapa.clip("en")
    full = lid.identify(voxlingua, clip)
    restricted = lid.identify(voxlingua, clip, languages=languages)
    assert list(restricted.probs) == ["en", "iw", "jw"]
    assert restricted.probs == pytest.approx(_renormalised(full, ["en", "iw", "jw"]), abs=1e-5)
    assert sum(restricted.probs.values()) == pytest.approx(1.0, abs=1e-6)


def test_a_macrolanguage_matches_its_members(mms):
    assert [mms.labels[i] for i in candidate_indices(mms, ["zh"])] == ["cmn"]


def test_a_language_the_model_lacks_is_a_clear_error(mms):
    with pytest.raises(ValueError, match="no label for 'Japanese'"):
        candidate_indices(mms, ["en", "Japanese"])
