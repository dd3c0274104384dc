"""Whisper's language codes, in token order: `<|en|>` is the token right after `<|startoftranscript|>`.

The keys of openai-whisper's `whisper/tokenizer.py` LANGUAGES, in its order (mlx-audio ships the
same dict in `mlx_audio/stt/models/whisper/tokenizer.py`). They are kept here because importing
mlx-audio's copy imports all of mlx-audio's STT models, torch and transformers with them (3.5-4.4 s
on the 2-core development machine); tests/test_label_lists.py checks that the two lists stay equal.
Every code maps to ISO 639-3 and an English name through `labels.describe_labels`.
"""

# Models up to large-v2 have the first 99 languages (openai-whisper's `num_languages=99`);
# large-v3 and later add Cantonese, `yue` (100).
WHISPER_LANGUAGES = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr",  # 0-9
    "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi", "vi",  # 10-19
    "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",  # 20-29
    "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk",  # 30-39
    "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk",  # 40-49
    "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",  # 50-59
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc",  # 60-69
    "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",  # 70-79
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",  # 80-89
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",  # 90-99
)
LANGUAGES_BEFORE_LARGE_V3 = 99
