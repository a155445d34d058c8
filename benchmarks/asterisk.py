"""The real telephone prompts of Debian's asterisk-core-sounds packages, for benchmarks.

Fetch without installing: `apt-get download asterisk-core-sounds-en-wav
asterisk-core-sounds-en` (and -es, -fr, -ru), then `dpkg-deb -x FILE ROOT` for each.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

VOICES = {
    "en": "en_US_f_Allison",
    "es": "es_MX_f_Allison",
    "fr": "fr_CA_f_June",
    "ru": "ru_RU_f_IvrvoiceRU",
}


def prompts(root: Path, lang: str) -> list[tuple[str, Path, str]]:
    """(key, wav, transcript) of the usable prompts of one language, sorted by key."""
    doc = root / f"usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz"
    sounds = root / "usr/share/asterisk/sounds" / VOICES[lang]
    if not doc.is_file():
        return []
    with gzip.open(doc, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    out = []
    for line in lines:
        key, sep, text = line.partition(":")
        text = text.strip()
        # skip comments, empty lines, [beep]-style annotations and broken characters
        if not sep or line.startswith(";") or not text or re.search(r"[\[\]<>{}�]", text):
            continue
        wav = sounds / f"{key.strip()}.wav"
        if wav.is_file():
            out.append((key.strip(), wav, text))
    return sorted(out)
