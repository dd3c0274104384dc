"""whisper-asr-webservice's answer shape: a lower-case English name and a two-letter code.

Whisper reports ISO 639-1 codes (`en`, `zh`), and clients such as Bazarr read them as such
(babelfish's `Language.fromalpha2`). The package's labels carry ISO 639-3 (`eng`, `cmn`,
`heb`), so each is mapped through `langcodes`: to its own 639-1 code where it has one, else
to its macrolanguage's (`cmn` -> `zh`, `arb` -> `ar`), else it stays ISO 639-3 (`haw`).
"""

from functools import lru_cache
from itertools import product
from string import ascii_lowercase
from typing import Dict

import langcodes


@lru_cache(maxsize=1)
def _two_letter_codes() -> Dict[str, str]:
    """ISO 639-3 -> ISO 639-1, for every two-letter code langcodes knows (`he` kept over the withdrawn `iw`)."""
    found: Dict[str, str] = {}
    for tag in ("".join(pair) for pair in product(ascii_lowercase, repeat=2)):
        if not langcodes.tag_is_valid(tag):
            continue
        # normalize=False: langcodes would otherwise turn `tl` (Tagalog) into `fil`
        alpha3 = langcodes.Language.get(tag, normalize=False).to_alpha3()
        if alpha3 not in found or langcodes.standardize_tag(tag) == tag:
            found[alpha3] = tag
    return found


def whisper_code(code: str) -> str:
    """An ISO 639-3 code as Whisper would write it: `eng` -> `en`, `cmn` -> `zh`, `haw` -> `haw`."""
    two_letter = _two_letter_codes().get(code)
    if two_letter:
        return two_letter
    if langcodes.tag_is_valid(code):
        macro = langcodes.standardize_tag(code, macro=True)
        if len(macro) == 2:
            return macro
    return code


def detect_language_answer(prediction) -> dict:
    """A LanguagePrediction as whisper-asr-webservice's /detect-language answers."""
    return {"detected_language": prediction.name.lower(), "language_code": whisper_code(prediction.code),
            "confidence": prediction.probability}
