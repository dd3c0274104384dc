"""Model labels <-> languages: ISO 639-3 codes, English names, and candidate sets.

Each family labels languages its own way: MMS-LID with ISO 639-3 (`eng`, `cmn`), VoxLingua107
with ISO 639-1-like codes including the withdrawn `iw` (Hebrew) and `jw` (Javanese), and
CommonLanguage with English names (`German`, `Chinese_Taiwan`). The mapping goes through
`langcodes` (with `language_data` for names), which knows the IANA registry's deprecated codes
and the macrolanguage table; nothing here is a hand-written code list.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Union

import langcodes
import numpy as np

UNDETERMINED = "und"  # ISO 639-3 for "undetermined": silence, or an answer below min_probability
UNDETERMINED_NAME = "Undetermined"


@dataclass(frozen=True)
class LanguageInfo:
    label: str  # the model's own label
    code: str  # ISO 639-3 ("und" when the label names no known language)
    name: str  # English name


def _parse_code(code: str) -> Optional[langcodes.Language]:
    """A known language code (withdrawn ones too: `iw` -> Hebrew), normalised; else None."""
    if not langcodes.tag_is_valid(code):
        return None
    language = langcodes.Language.get(code)
    return language if language.language and language.is_valid() else None


def _find_name(name: str) -> Optional[langcodes.Language]:
    """An English language name (`Hakha_Chin`, `Chinese_Taiwan`) -> its language, or None."""
    name = name.replace("_", " ").strip()
    if not re.fullmatch(r"[^\W\d_][^\d_]*", name):
        return None  # placeholders such as "LABEL_0" are not names (langcodes would guess one)
    try:
        return langcodes.find(name, language="en")
    except LookupError:
        return None


def _language_info(label: str, given_name: Optional[str]) -> LanguageInfo:
    if _parse_code(label) is not None:
        # ISO 639-3 from the code as written: normalising first would turn `tl` into `fil`.
        code = langcodes.Language.get(label, normalize=False).to_alpha3()
        return LanguageInfo(label, code, given_name or _parse_code(label).display_name("en"))
    name = (given_name or label).replace("_", " ")
    language = _find_name(name)  # CommonLanguage: the label is the name
    return LanguageInfo(label, language.to_alpha3() if language else UNDETERMINED, name)


@lru_cache(maxsize=16)
def describe_labels(labels: Sequence[str], names: Optional[Sequence[str]] = None) -> Dict[str, LanguageInfo]:
    """Every label -> LanguageInfo. `names` are the model's English names, where it has them."""
    names = names or [None] * len(labels)
    return {label: _language_info(label, name) for label, name in zip(labels, names)}


def model_languages(model) -> Dict[str, LanguageInfo]:
    """The model's labels described, with the English names its checkpoint gives (`label_names`)."""
    names = tuple(model.label_names)
    return describe_labels(tuple(model.labels), names if any(names) else None)


def describe(label: str, languages: Dict[str, LanguageInfo]) -> LanguageInfo:
    """A label of the model, or "und" (no answer), as code and name."""
    if label in languages:
        return languages[label]
    return LanguageInfo(label, UNDETERMINED, UNDETERMINED_NAME if label == UNDETERMINED else label)


def _key(language: langcodes.Language, macro: bool) -> str:
    """A comparable form: `iw`, `he` and `heb` all -> `he`; with macro, `cmn` -> `zh`."""
    return langcodes.standardize_tag(language.language, macro=macro)


def parse_language(term: str) -> langcodes.Language:
    """A user's language: ISO 639-1 or 639-3 code (also withdrawn ones) or an English name."""
    text = term.strip()
    language = (_parse_code(text) or _find_name(text)) if text else None
    if language is None:
        raise ValueError(
            f"unknown language {term!r}: give an ISO 639-1 or 639-3 code (en, eng) or an English name (English)"
        )
    return language


def candidate_indices(model, languages: Union[None, str, Iterable[str]]) -> Optional[np.ndarray]:
    """Indices of the model's labels for the candidate languages, or None for all labels.

    Each candidate matches labels of the same language (`en`, `eng`, `English` are one); a
    macrolanguage matches its members only when the model has no label for it itself
    (`zh` matches MMS-LID's `cmn`). A candidate the model cannot answer is an error.
    """
    if languages is None:
        return None
    terms = languages.split(",") if isinstance(languages, str) else list(languages) if isinstance(languages, Iterable) else None
    if terms is None or not all(isinstance(t, str) for t in terms):
        raise ValueError(f"languages must be a string such as 'en,ru' or a list of strings, got {languages!r}")
    terms = [t.strip() for t in terms if t.strip()]
    if not terms:
        raise ValueError("languages is empty: name at least one candidate language, or leave it out")
    infos = list(model_languages(model).values())
    parsed = [_parse_code(i.code) for i in infos]
    chosen: List[int] = []
    for term in terms:
        wanted = parse_language(term)
        matches = []
        for macro in (False, True):
            matches = [i for i, lang in enumerate(parsed) if lang and _key(lang, macro) == _key(wanted, macro)]
            if matches:
                break
        if not matches:
            raise ValueError(
                f"this model has no label for {term!r} ({wanted.display_name('en')}, {wanted.to_alpha3()}); "
                f"its {len(infos)} labels include {', '.join(i.label for i in infos[:8])}"
            )
        chosen += [i for i in matches if i not in chosen]
    return np.array(sorted(chosen))
