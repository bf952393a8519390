"""Built-in text cleaners, registered like any third-party plugin.

Each cleaner maps one string to another and is meant to be chained by name (see
``recfeat.extraction.cleaning``). The default chain is ``html, control-chars, nfkc, pii,
whitespace`` (``pii``: ``recfeat.plugins.pii``); ``mask-urls``, ``emoji``, ``lowercase``,
``stopwords`` and ``truncate`` are opt-in.

The Unicode-aware patterns use the ``regex`` package (also required by transformers) because
the standard ``re`` has no Unicode properties such as ``\\p{Extended_Pictographic}``.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from html.parser import HTMLParser
from typing import Any

from recfeat.components import Cleaner
from recfeat.errors import OptionError, closest
from recfeat.plugin.hookspecs import hookimpl


@cache
def _regex(pattern: str):
    """Compile with the ``regex`` module once, on first use (keeps plugin import instant)."""
    import regex

    return regex.compile(pattern, regex.V1)


# ---------------------------------------------------------------------------------------
# HTML


class _OverBudget(Exception):
    """The parser has scanned more than its budget (see ``_TextExtractor``)."""


class _TextExtractor(HTMLParser):
    """Collects character data; drops script/style bodies; block tags become spaces.

    The standard parser scans from each ``<`` to the end of its construct; a construct left
    unterminated is scanned to the end of the text, and at ``close()`` that is repeated for
    every later unterminated one: quadratic (``"<a" * 200_000`` takes minutes, a 21 MB
    text days). Each construct's scan is charged to a budget of ``SCAN_BUDGET`` times the
    text's length; past it the parser stops (``_OverBudget``) and the text is stripped by
    :func:`_strip_tags` instead, in linear time. Markup real texts carry (tags, comments,
    a few stray ``<``) stays far below the budget and is parsed exactly as before."""

    SCAN_BUDGET = 4

    # Tags whose boundaries separate words visually: "a<br>b" must not become "ab".
    BLOCK_TAGS = frozenset(
        "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 "
        "h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th thead tr ul"
        .split()
    )
    SKIP_TAGS = frozenset({"script", "style"})

    def __init__(self, size: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._budget = self.SCAN_BUDGET * size + (1 << 20)

    def _charge(self, i: int, end: int) -> int:
        self._budget -= (end if end >= 0 else len(self.rawdata)) - i
        if self._budget < 0:
            raise _OverBudget
        return end

    def parse_starttag(self, i: int) -> int:
        return self._charge(i, super().parse_starttag(i))

    def parse_endtag(self, i: int) -> int:
        return self._charge(i, super().parse_endtag(i))

    def parse_comment(self, i: int, report: int = 1) -> int:
        return self._charge(i, super().parse_comment(i, report))

    def parse_pi(self, i: int) -> int:
        return self._charge(i, super().parse_pi(i))

    def parse_html_declaration(self, i: int) -> int:
        return self._charge(i, super().parse_html_declaration(i))

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP_TAGS:
            self._skip += 1
        elif tag in self.BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        if tag in self.BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


class HtmlCleaner(Cleaner):
    """Strip HTML tags (script/style bodies dropped) and unescape entities such as &amp; and &#39;."""

    name = "html"

    def clean_text(self, text: str) -> str:
        if "<" not in text and "&" not in text:
            return text
        # A tag cut off at the very end (truncated HTML) would otherwise be kept as text.
        text = _regex(r"<[A-Za-z/!][^<>]*\Z").sub("", text)
        parser = _TextExtractor(len(text))
        try:
            parser.feed(text)
            parser.close()
            out = "".join(parser.parts)
        except _OverBudget:
            out = _strip_tags(text)
        # &nbsp; unescapes to U+00A0; tokenizers and the whitespace cleaner treat it as a space anyway.
        return out.replace("\xa0", " ")


def _strip_tags(text: str) -> str:
    """Linear-time stripping for markup the parser would take quadratic time over: script
    and style bodies and comments go, every other ``<...>`` with no ``<`` inside goes (a
    space for block tags, as the parser does), entities are unescaped; the rest stays text."""
    import html

    kept, pos, comments_close = [], 0, True
    # each search starts where the previous one ended: one pass over the text
    while found := _regex(r"(?i)<(script|style)\b[^<>]*>|<!--").search(text, pos):
        kept.append(text[pos : found.start()])
        name = found.group(1)
        closing = rf"(?i)</{name}\s*>" if name else r"-->"
        end = _regex(closing).search(text, found.end()) if name or comments_close else None
        if end is not None:
            pos = end.end()
        elif name:  # an unclosed script or style: the parser drops its body to the end
            pos = len(text)
        else:  # an unclosed comment stays text, and so do the ones after it
            comments_close = False
            kept.append(found.group(0))
            pos = found.end()
    kept.append(text[pos:])

    def tag(match) -> str:
        name = _regex(r"[A-Za-z][A-Za-z0-9]*").search(match.group(0))
        block = name is not None and name.group(0).lower() in _TextExtractor.BLOCK_TAGS
        return " " if block else ""

    return html.unescape(_regex(r"<[^<>]*>").sub(tag, "".join(kept)))


# ---------------------------------------------------------------------------------------
# URLs and e-mail addresses

_URL = (
    r"(?:\b(?:https?|ftp)://|(?<![\w.@/-])www\.)"  # scheme, or a bare www. host
    r"[^\s<>\"]+"
)
_EMAIL = r"(?:\bmailto:)?(?<![\w.+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
_TRAILING = ".,;:!?'\"*"


def _trim_url(url: str) -> tuple[str, str]:
    """Split sentence punctuation (and an unbalanced ')') off the end of a matched URL."""
    # counted once and updated as the end moves: linear, even for a URL ending in 10**6 ')'
    closing = {c: url.count(c) for c in ")]}"}
    opening = {")": url.count("("), "]": url.count("["), "}": url.count("{")}
    end = len(url)
    while end:
        last = url[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last in closing and closing[last] > opening[last]:
            closing[last] -= 1
            end -= 1
        else:
            break
    return url[:end], url[end:]


def mask_links(text: str, url_token: str | None, email_token: str | None) -> tuple[str, int, int]:
    """URLs, then e-mail addresses, replaced by their tokens (None: that kind is left alone);
    with how many of each were replaced. The one URL and e-mail masking, shared by the
    ``mask-urls`` and ``pii`` cleaners."""
    if "@" not in text and "://" not in text and "www." not in text and "WWW." not in text:
        return text, 0, 0
    urls = emails = 0
    if url_token is not None:

        def url(match) -> str:
            nonlocal urls
            found, tail = _trim_url(match.group(0))
            if not found:
                return match.group(0)
            urls += 1
            return url_token + tail

        text = _regex("(?i)" + _URL).sub(url, text)
    if email_token is not None and "@" in text:
        text, emails = _regex("(?i)" + _EMAIL).subn(email_token, text)
    return text, urls, emails


class UrlMaskCleaner(Cleaner):
    """Replace URLs and e-mail addresses with placeholders ([URL], [EMAIL])."""

    name = "mask-urls"
    aliases = ("urls",)
    masks = ("url", "email")

    def __init__(self, url_token: str = "[URL]", email_token: str = "[EMAIL]"):
        self.url_token = url_token
        self.email_token = email_token

    def mask_text(self, text: str) -> tuple[str, dict[str, int]]:
        text, urls, emails = mask_links(text, self.url_token, self.email_token)
        found = {k: n for k, n in (("url", urls), ("email", emails)) if n}
        return text, found

    def clean_text(self, text: str) -> str:
        return mask_links(text, self.url_token, self.email_token)[0]


# ---------------------------------------------------------------------------------------
# Unicode normalisation and invisible characters


class NfkcCleaner(Cleaner):
    """Unicode NFKC normalisation: full-width forms, ligatures and compatibility characters to plain ones."""

    name = "nfkc"

    def clean_text(self, text: str) -> str:
        if text.isascii():
            return text
        return unicodedata.normalize("NFKC", text)


# Line breaks, tabs and other separators become a space, so words on either side stay apart.
_SPACE_TABLE = dict.fromkeys(map(ord, "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"), " ")
# Invisible characters: control (Cc), format (Cf: zero-width space, joiners, BOM, soft hyphen,
# bidi marks) and lone surrogates (Cs, from bad decoding; they break UTF-8 output later).
_INVISIBLE = r"[\p{Cc}\p{Cf}\p{Cs}]"
_JOINERS = "\u200c\u200d"


def _joinable(ch: str) -> bool:
    """A non-ASCII letter, mark or symbol: the neighbours for which ZWJ/ZWNJ carry meaning."""
    return not ch.isascii() and unicodedata.category(ch)[0] in "LMS"


class ControlCharsCleaner(Cleaner):
    """Remove control and zero-width characters (ZWSP, BOM, soft hyphen, bidi marks); tabs and newlines become spaces.

    Zero-width joiner and non-joiner (U+200D, U+200C) are kept when both neighbours are
    non-ASCII letters, marks or symbols (``keep_joiners=True``, the default): there they change
    spelling (Persian "می‌خواهم", Indic conjuncts) or join emoji sequences. Elsewhere, e.g.
    inside Latin words, they are invisible noise and are removed.
    """

    name = "control-chars"

    def __init__(self, keep_joiners: bool = True):
        self.keep_joiners = keep_joiners

    def _drop(self, match) -> str:
        ch = match.group(0)
        if self.keep_joiners and ch in _JOINERS:
            s, pos = match.string, match.start()
            if 0 < pos < len(s) - 1 and _joinable(s[pos - 1]) and _joinable(s[pos + 1]):
                return ch
        return ""

    def clean_text(self, text: str) -> str:
        if text.isprintable():
            return text
        text = text.translate(_SPACE_TABLE)
        if text.isprintable():  # the common case: only line breaks and tabs
            return text
        return _regex(_INVISIBLE).sub(self._drop, text)


# ---------------------------------------------------------------------------------------
# Emoji

# An emoji is a character with emoji presentation by default, a pictographic character forced
# to emoji presentation by U+FE0F, a pictograph from the emoji blocks (U+2600-27BF,
# U+1F000-1FAFF), a keycap or a flag; then skin-tone modifiers, variation selectors, tag
# characters (subdivision flags) and ZWJ-joined continuations belong to the same sequence.
# Text-presentation symbols such as (c), TM and arrows, and every letter (CJK included), stay.
_EMOJI_BASE = (
    r"\p{Emoji_Presentation}"
    r"|\p{Extended_Pictographic}\uFE0F"
    r"|[[\u2600-\u27BF\U0001F000-\U0001FAFF]&&\p{Extended_Pictographic}]"
)
_EMOJI_TAIL = r"(?:\p{Emoji_Modifier}|\uFE0F|[\U000E0020-\U000E007F])*"
_EMOJI = (
    r"[0-9#*]\uFE0F?\u20E3"
    r"|\p{Regional_Indicator}{1,2}"
    rf"|(?:{_EMOJI_BASE}){_EMOJI_TAIL}(?:\u200D(?:{_EMOJI_BASE}|\p{{Extended_Pictographic}}){_EMOJI_TAIL})*"
)


class EmojiCleaner(Cleaner):
    """Remove emoji, including skin-tone, ZWJ, keycap and flag sequences; letters of every script stay."""

    name = "emoji"

    def __init__(self, replacement: str = ""):
        self.replacement = replacement

    def clean_text(self, text: str) -> str:
        if text.isascii():
            return text
        return _regex(_EMOJI).sub(self.replacement, text)


# ---------------------------------------------------------------------------------------
# Whitespace and case


_PIECE = 1 << 20  # characters


def _at_spaces(text: str):
    """``text`` in consecutive pieces of about ``_PIECE`` characters, each cut at a
    whitespace character (what ``str.split`` splits at)."""
    import re  # the standard engine: its \s is str.isspace exactly (the regex module's is not)

    space = re.compile(r"\s")
    start = 0
    while start < len(text):
        found = space.search(text, start + _PIECE)
        end = found.start() if found else len(text)
        yield text[start:end]
        start = end


class WhitespaceCleaner(Cleaner):
    """Collapse runs of whitespace (any Unicode space) to one space and strip the ends."""

    name = "whitespace"

    def __init__(self, keep_newlines: bool = False):
        self.keep_newlines = keep_newlines

    def clean_text(self, text: str) -> str:
        if not self.keep_newlines:
            if len(text) > _PIECE:
                # split() holds ~50 bytes a word (250 MB for a 20 MB review): split the text
                # into pieces at whitespace, so no word spans two, and each piece in turn
                pieces = (" ".join(piece.split()) for piece in _at_spaces(text))
                return " ".join(piece for piece in pieces if piece)
            return " ".join(text.split())
        lines = (" ".join(line.split()) for line in text.splitlines())
        return "\n".join(line for line in lines if line)


class LowercaseCleaner(Cleaner):
    """Lowercase the text (``casefold=True`` for caseless matching: German ß -> ss)."""

    name = "lowercase"

    def __init__(self, casefold: bool = False):
        self.casefold = casefold

    def clean_text(self, text: str) -> str:
        return text.casefold() if self.casefold else text.lower()


# ---------------------------------------------------------------------------------------
# Stop words

# Small lists of the most frequent function words. English uses scikit-learn's list.
_STOPWORDS: dict[str, str] = {
    "de": "aber alle allem allen aller alles als also am an ander andere anderem anderen "
    "anderer anderes auch auf aus bei bin bis bist da damit dann das dass dem den denn der "
    "des dessen die dies diese diesem diesen dieser dieses doch dort du durch ein eine einem "
    "einen einer eines er es etwas euch euer für hab habe haben hat hatte hier hin ich ihm "
    "ihn ihnen ihr ihre im in ist ja jede jedem jeden jeder jedes jene jetzt kann man mein "
    "meine mich mir mit muss nach noch nun nur ob oder ohne sehr sein seine sich sie sind so "
    "solche soll sondern sonst um und uns unser unter vom von vor war waren was weil welche "
    "wenn wer werde werden wie wieder will wir wird wo zu zum zur über",
    "fr": "a au aux avec ce ces cette dans de des du elle en et eux il ils je la le les leur "
    "leurs lui ma mais me meme mes moi mon nos notre nous on ou où par pas pour qu que qui "
    "sa se ses son sur ta te tes toi ton tu un une vos votre vous c d j l m n s t y été "
    "être avoir ai as avons avez ont est sont était étaient fait cela ça très plus aussi "
    "comme si tout tous toute toutes",
    "es": "a al algo algunas algunos ante antes como con contra cual cuando de del desde "
    "donde durante e el ella ellas ellos en entre era erais eran eras eres es esa esas ese "
    "eso esos esta estaba estado estar este esto estos fue fueron fui ha había han has hasta "
    "hay la las le les lo los me mi mis mucho muy más nos nosotros o otra otras otro otros "
    "para pero poco por porque que quien se ser si sin sobre son su sus también te tiene "
    "tu tus un una uno unos y ya yo él",
    "it": "a ad al alla alle allo agli ai anche avere c che chi ci come con contro da dal "
    "dalla dei del della delle dello di dove e ed era essere gli ha hanno ho i il in io la "
    "le lei lo loro lui ma mi mia mio ne negli nei nel nella noi o per perché più quale "
    "quando quella quello questa questo se si sia sono su sua suo sul sulla tra tu tutto "
    "un una uno vi voi",
    "nl": "aan al alles als ben bij daar dan dat de der deze die dit doch doen door dus een "
    "en er ga had heb hebben heeft hem het hier hij hoe hun ik in is ja je kan kon maar me "
    "meer men met mij mijn na naar niet nog nu of om omdat ons ook op over te tegen toch "
    "tot u uit van veel voor want was wat we wel werd wie wij wil worden zal ze zelf zich "
    "zij zijn zo zou",
    "pt": "a ao aos as até com como da das de dela dele deles do dos e ela elas ele eles em "
    "entre era essa esse esta este eu foi for há isso isto já lhe mais mas me mesmo meu "
    "minha muito na nas no nos nós o os ou para pela pelas pelo pelos por qual quando que "
    "quem se sem ser seu seus só sua suas também te tem tu um uma você vocês",
}
# Negations carry the sentiment of a review ("not good"); scikit-learn's list drops them.
_NEGATIONS = frozenset(
    "no not nor never none nothing neither nobody nowhere cannot without nicht kein keine "
    "ne pas jamais rien no nunca nada non mai niente niet geen nooit não nunca nada".split()
)
# A Latin-script word (Basic Latin, Latin-1, Latin Extended A/B and Additional), with
# inner apostrophes ("don't"). It must stand alone: a word glued to digits, underscores,
# hyphens or letters of another script (CJK, Thai, Cyrillic...) is never touched.
_LATIN = r"A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u1E00-\u1EFF"
_WORD = rf"(?<![\w'’-])[{_LATIN}]+(?:['’][{_LATIN}]+)*(?![\w'’-])"


@cache
def _word_re():
    import re  # no Unicode properties needed here, and the stdlib engine is faster

    return re.compile(_WORD)


@cache
def stopword_list(language: str) -> frozenset[str]:
    """The built-in stop words of ``language`` (ISO 639-1 code), lowercase."""
    if language == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return frozenset(ENGLISH_STOP_WORDS)
    return frozenset(_STOPWORDS[language].split())


STOPWORD_LANGUAGES = ("en", *sorted(_STOPWORDS))


class StopwordsCleaner(Cleaner):
    """Remove stop words of one language from Latin-script words only; other scripts are left intact."""

    name = "stopwords"

    def __init__(
        self,
        language: str = "en",
        keep_negations: bool = True,
        extra: tuple[str, ...] = (),
    ):
        if language not in STOPWORD_LANGUAGES:
            raise OptionError(
                f"cleaner 'stopwords': no stop-word list for language {language!r}.{closest(language, STOPWORD_LANGUAGES)} "
                f"Available: {', '.join(STOPWORD_LANGUAGES)} (add your own words with extra=[...])"
            )
        self.language = language
        self.keep_negations = keep_negations
        self.extra = tuple(extra)
        words = set(stopword_list(language)) | {w.lower() for w in self.extra}
        if keep_negations:
            words -= _NEGATIONS
        self._words = frozenset(words)

    def clean_text(self, text: str) -> str:
        words = self._words
        spans = [m.span() for m in _word_re().finditer(text) if m.group(0).lower() in words]
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        i = 0
        while i < len(spans):
            word_start, word_end = spans[i]
            # Merge stop words separated by whitespace only ("of the") into one removal.
            while i + 1 < len(spans) and text[word_end : spans[i + 1][0]].isspace():
                i += 1
                word_end = spans[i][1]
            left = word_start
            while left > pos and text[left - 1].isspace():
                left -= 1
            right = word_end
            while right < len(text) and text[right].isspace():
                right += 1
            out.append(text[pos:left])
            # Words on both sides: keep one separator (a line break if the removed stretch
            # had one, else the space on the left). At an edge or next to punctuation
            # ("is great." -> "great."): no separator.
            if left < word_start and right > word_end and left > 0 and right < len(text):
                out.append("\n" if "\n" in text[left:right] else text[left:word_start])
            pos = right
            i += 1
        out.append(text[pos:])
        return "".join(out)


# ---------------------------------------------------------------------------------------
# Length cap


class TruncateCleaner(Cleaner):
    """Cap the text at ``max_chars`` characters, cutting on a word boundary when one is near."""

    name = "truncate"
    aliases = ("max-chars",)

    def __init__(self, max_chars: int = 2000):
        if max_chars < 1:
            raise OptionError(f"cleaner 'truncate': max_chars must be at least 1 (got {max_chars})")
        self.max_chars = max_chars

    def clean_text(self, text: str) -> str:
        limit = self.max_chars
        if len(text) <= limit:
            return text
        # Cut at the last whitespace before the limit if that keeps at least half of it;
        # text without spaces (Chinese, Japanese, Thai, long URLs) is cut at the limit.
        cut = limit
        space = max(text.rfind(" ", 0, limit + 1), text.rfind("\n", 0, limit + 1))
        if space >= limit // 2:
            cut = space
        # Never split a character from its combining marks, a ZWJ sequence or a variation selector.
        while cut > 0 and _continues(text[cut]):
            cut -= 1
        return text[:cut].rstrip()


def _continues(ch: str) -> bool:
    return ch in "\u200d\ufe0f\ufe0e" or unicodedata.category(ch) in ("Mn", "Me", "Mc") or (
        "\U0001F3FB" <= ch <= "\U0001F3FF"
    )


@hookimpl
def register_cleaners(register):
    # (``pii`` registers itself from recfeat.plugins.pii, which builds on this module)
    register(HtmlCleaner)
    register(UrlMaskCleaner, aliases=("urls",))
    register(NfkcCleaner)
    register(ControlCharsCleaner)
    register(EmojiCleaner)
    register(WhitespaceCleaner)
    register(LowercaseCleaner)
    register(StopwordsCleaner)
    register(TruncateCleaner, aliases=("max-chars",))
