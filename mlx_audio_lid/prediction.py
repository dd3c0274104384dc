"""One recording's answer: the best label, every candidate's probability, and the timeline if asked."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .labels import LanguageInfo, describe


@dataclass
class Segment:
    """A stretch of the recording in one language; times in seconds."""

    start: float
    end: float
    language: str  # the model's label, or "und" where the best window answer was below min_probability
    probability: float  # the language's mean window probability over the segment
    code: str = ""  # ISO 639-3
    name: str = ""  # English name


@dataclass
class LanguagePrediction:
    """One recording's answer: the best label and the probability of every (candidate) label."""

    language: str  # the model's own label, e.g. "eng" (MMS-LID) or "en" (VoxLingua107); "und" if none
    probability: float
    probs: Dict[str, float] = field(repr=False)  # every candidate label, in the model's label order
    top_k: int = 5  # how many pairs top() gives by default
    code: str = ""  # ISO 639-3, e.g. "eng" ("und" for silence or an answer below min_probability)
    name: str = ""  # English name, e.g. "English"
    duration: float = 0.0  # seconds of audio
    speech: float = 0.0  # seconds the VAD counted as speech
    segments: Optional[List[Segment]] = None  # the timeline, when asked for (segments=True)
    warnings: List[str] = field(default_factory=list)  # e.g. the part of a damaged file that was skipped
    languages: Dict[str, LanguageInfo] = field(default_factory=dict, repr=False, compare=False)

    def top(self, k: Optional[int] = None) -> List[Tuple[str, float]]:
        """The k (default: top_k) most probable (label, probability) pairs, best first."""
        ranked = sorted(self.probs.items(), key=lambda item: item[1], reverse=True)
        return ranked[: self.top_k if k is None else k]

    def to_dict(self, k: Optional[int] = None) -> dict:
        """A JSON-ready record: language, code, name, probability, top, segments (if any)."""
        record = {"language": self.language, "code": self.code, "name": self.name,
                  "probability": self.probability, "duration": self.duration, "speech": self.speech,
                  "top": [_entry(describe(label, self.languages), p) for label, p in self.top(k)]}
        if self.segments is not None:
            record["segments"] = [vars(segment).copy() for segment in self.segments]
        if self.warnings:
            record["warnings"] = list(self.warnings)
        return record


def _entry(info: LanguageInfo, probability: float) -> dict:
    return {"language": info.label, "code": info.code, "name": info.name, "probability": probability}
