"""Language names, codes and the scoring unit each language is counted in.

MLC-SLM keys and manifests name languages in full ("English-American", "Japanese"), users
type ISO codes ("en", "ja"): everything is resolved to the code here, once.
"""

from __future__ import annotations

import re

# code -> English name, the MLC-SLM eleven first, then the rest of what Whisper knows that
# users of call and meeting data meet most often.
NAMES: dict[str, str] = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "pt": "Portuguese",
    "ru": "Russian",
    "es": "Spanish",
    "th": "Thai",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "yue": "Cantonese",
    "ar": "Arabic",
    "hi": "Hindi",
    "id": "Indonesian",
    "ms": "Malay",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "tl": "Tagalog",
}

# The languages Whisper has tokens for (large-v3 adds yue). Written out rather than taken
# from faster-whisper's tokenizer table (or transformers'), because importing that loads
# the library, and `sbasr score`, which needs this module, must start fast.
# A test keeps the two equal.
WHISPER_CODES = frozenset(
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no "
    "th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw "
    "gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl "
    "mg as tt haw ln ha ba jw su yue".split()
)

# Every language Whisper knows, by the English name its tokenizer gives it (transformers'
# table, title-cased; a test keeps them equal), and the other names it accepts: what a user
# may type after --language. `NAMES` above stays the table prompts and reports use.
WHISPER_NAMES: dict[str, str] = {
    "en": "English",
    "zh": "Chinese",
    "de": "German",
    "es": "Spanish",
    "ru": "Russian",
    "ko": "Korean",
    "fr": "French",
    "ja": "Japanese",
    "pt": "Portuguese",
    "tr": "Turkish",
    "pl": "Polish",
    "ca": "Catalan",
    "nl": "Dutch",
    "ar": "Arabic",
    "sv": "Swedish",
    "it": "Italian",
    "id": "Indonesian",
    "hi": "Hindi",
    "fi": "Finnish",
    "vi": "Vietnamese",
    "he": "Hebrew",
    "uk": "Ukrainian",
    "el": "Greek",
    "ms": "Malay",
    "cs": "Czech",
    "ro": "Romanian",
    "da": "Danish",
    "hu": "Hungarian",
    "ta": "Tamil",
    "no": "Norwegian",
    "th": "Thai",
    "ur": "Urdu",
    "hr": "Croatian",
    "bg": "Bulgarian",
    "lt": "Lithuanian",
    "la": "Latin",
    "mi": "Maori",
    "ml": "Malayalam",
    "cy": "Welsh",
    "sk": "Slovak",
    "te": "Telugu",
    "fa": "Persian",
    "lv": "Latvian",
    "bn": "Bengali",
    "sr": "Serbian",
    "az": "Azerbaijani",
    "sl": "Slovenian",
    "kn": "Kannada",
    "et": "Estonian",
    "mk": "Macedonian",
    "br": "Breton",
    "eu": "Basque",
    "is": "Icelandic",
    "hy": "Armenian",
    "ne": "Nepali",
    "mn": "Mongolian",
    "bs": "Bosnian",
    "kk": "Kazakh",
    "sq": "Albanian",
    "sw": "Swahili",
    "gl": "Galician",
    "mr": "Marathi",
    "pa": "Punjabi",
    "si": "Sinhala",
    "km": "Khmer",
    "sn": "Shona",
    "yo": "Yoruba",
    "so": "Somali",
    "af": "Afrikaans",
    "oc": "Occitan",
    "ka": "Georgian",
    "be": "Belarusian",
    "tg": "Tajik",
    "sd": "Sindhi",
    "gu": "Gujarati",
    "am": "Amharic",
    "yi": "Yiddish",
    "lo": "Lao",
    "uz": "Uzbek",
    "fo": "Faroese",
    "ht": "Haitian Creole",
    "ps": "Pashto",
    "tk": "Turkmen",
    "nn": "Nynorsk",
    "mt": "Maltese",
    "sa": "Sanskrit",
    "lb": "Luxembourgish",
    "my": "Myanmar",
    "bo": "Tibetan",
    "tl": "Tagalog",
    "mg": "Malagasy",
    "as": "Assamese",
    "tt": "Tatar",
    "haw": "Hawaiian",
    "ln": "Lingala",
    "ha": "Hausa",
    "ba": "Bashkir",
    "jw": "Javanese",
    "su": "Sundanese",
    "yue": "Cantonese",
}
_NAME_ALIASES = {
    "burmese": "my",
    "valencian": "ca",
    "flemish": "nl",
    "haitian": "ht",
    "letzeburgesch": "lb",
    "pushto": "ps",
    "panjabi": "pa",
    "moldavian": "ro",
    "moldovan": "ro",
    "sinhalese": "si",
    "castilian": "es",
    "mandarin": "zh",
    "filipino": "tl",
}

# Languages written without spaces between words: their error rate is a CER.
CHAR_LANGUAGES = frozenset({"ja", "ko", "th", "zh", "yue"})

_BY_NAME = {name.lower(): code for code, name in NAMES.items()}
_BY_NAME.update({"mandarin": "zh", "filipino": "tl"})
_KEY_SPLIT = re.compile(r"[-_/\s.]")


def to_code(language: str) -> str | None:
    """Resolve a code or a name ("en", "English", "English-American", "ja_JP") to a code.

    Unknown codes of two or three letters pass through: Whisper knows 99 languages and a
    user scoring Swahili should not be refused.
    """
    text = language.strip()
    if not text:
        return None
    low = text.lower()
    if low in NAMES:
        return low
    if low in _BY_NAME:
        return _BY_NAME[low]
    head = _KEY_SPLIT.split(low, maxsplit=1)[0]
    if head in NAMES:
        return head
    if head in _BY_NAME:
        return _BY_NAME[head]
    if re.fullmatch(r"[a-z]{2,3}", low):
        return low
    return None


_USER_NAMES = {
    **{n.lower(): c for c, n in WHISPER_NAMES.items()},
    **{n.lower(): c for c, n in NAMES.items()},
    **_NAME_ALIASES,
}


def user_language(text: str) -> str | None:
    """The code of a language a user names: a Whisper code or an English name, in any case
    ("it", "IT", "italian"), or a locale of a known code ("pt_BR", "zh-CN"); None for
    anything else. Stricter than `to_code`, which lets unknown codes through for the
    languages manifests and keys carry."""
    low = text.strip().lower()
    if low in WHISPER_CODES:
        return low
    if low in _USER_NAMES:
        return _USER_NAMES[low]
    locale = re.fullmatch(r"([a-z]{2,3})[-_][a-z]{2,4}", low)
    return locale.group(1) if locale and locale.group(1) in WHISPER_CODES else None


def language_choices() -> list[str]:
    """Every code and name `user_language` accepts (for suggestions)."""
    return sorted(WHISPER_CODES | set(_USER_NAMES))


def from_key(key: str) -> str | None:
    """The language named by an utterance key's first field (MLC-SLM: "Japanese-0012-...")."""
    head = _KEY_SPLIT.split(key, maxsplit=1)[0].lower()
    return _BY_NAME.get(head) or (head if head in NAMES else None)


def name(code: str | None) -> str:
    """The English name for prompts and tables; the code itself where we know no name."""
    if code is None:
        return "unknown"
    return NAMES.get(code, code)


def default_unit(code: str | None) -> str:
    """The unit a language is scored in unless the user says otherwise.

    Languages written without spaces get "mixed": their CJK and Thai characters are tokens
    on their own while runs of other scripts (a Latin brand name, digits) stay words, which
    is exactly how the MLC-SLM recipe counts its CER. The rest are scored in words. An
    unknown language gets "mixed" too, which is right for either kind of text.
    """
    if code is None or code in CHAR_LANGUAGES:
        return "mixed"
    return "word"
