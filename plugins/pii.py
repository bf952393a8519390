"""The ``pii`` cleaner: personal data in review texts replaced with placeholders.

What it masks, in this order (each placeholder is then left alone by the later patterns):

- URLs (``[URL]``) and e-mail addresses (``[EMAIL]``): the ``mask-urls`` cleaner's patterns
  (``recfeat.plugins.cleaners.mask_links``);
- payment-card numbers (``[CARD]``): 13 to 19 digits of the major networks (first digit 2-6),
  written whole or in the usual groups (4-4-4-4, 4-6-5) separated by spaces or dashes, and
  passing the Luhn check, so order numbers and other long numbers are left alone;
- phone numbers (``[PHONE]``): international (``+44 20 7946 0958``, ``+1 (415) 555-2671``,
  ``0049 30 1234567``), North American (``(415) 555-2671``, ``415-555-2671``,
  ``1-800-555-0199``) and European national numbers with a leading 0 (``030 1234567``,
  ``06 12 34 56 78``, ``020 7946 0958``, ``089/1234567``; at most one dash: more is a part
  number, as in "Fender 099-0502-000");
- social @handles (``[HANDLE]``): ``@name`` not glued to a word (``C@t`` stays).

Reviews are full of numbers that look like these and must stay: prices, dates, years,
model and version numbers, measurements, ratings. The patterns are shaped by that (a
national number needs separators, so an ISBN-10 is not a phone; a date is never one; a
card needs its checksum), and tests/test_privacy.py holds the table of near misses.

What it does not find: names, postal addresses, a national number written without
separators (``4155552671``), a bare domain without ``www.`` or a scheme (``example.com``),
card numbers in other groupings. docs/privacy.md says so to users.

Cost: texts without ``@``, a URL marker or a run of eight digits (most reviews) are checked
by three substring tests and one C-speed search, and skip every pattern.
"""

from __future__ import annotations

import re

from recfeat.components import Cleaner
from recfeat.errors import OptionError
from recfeat.plugin.hookspecs import hookimpl
from recfeat.plugins.cleaners import mask_links

KINDS = ("url", "email", "card", "phone", "handle")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}

# Eight digits, each pair separated by at most two of ``( ) . - / space``: every card and
# phone number has such a run; a text without one skips the card and phone patterns.
_DIGIT_RUN = re.compile(r"[0-9](?:[ ./()-]{0,2}[0-9]){7}")

# Not glued to a word, a number or a decimal/date separator on either side.
_BEFORE = r"(?<![\w+/.,-])"
_AFTER = r"(?![\w/-]|[.,:][0-9])"

_CARD = re.compile(
    _BEFORE + r"(?:"
    r"[2-6][0-9]{12,18}"  # written whole
    r"|[2-6][0-9]{3}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,4}(?:\1[0-9]{1,3})?"  # 4-4-4-4(-3)
    r"|3[0-9]{3}([ -])[0-9]{6}\2[0-9]{4,5}"  # 4-6-5 (Amex), 4-6-4 (Diners)
    r")" + _AFTER
)

_PHONE = re.compile(
    r"(?:"
    # international: +CC or 00CC, then up to six groups (a group may be bracketed: (0)20)
    r"(?<![\w+])(?P<intl>\+|(?<![\w/.,:-])00)[1-9][0-9]{0,2}"
    r"(?:[ .-]?\([0-9]{1,4}\)|[ .-]?[0-9]{1,5}+){1,6}"
    r"|" + _BEFORE +
    # North American: optional 1, area code and exchange (first digit 2-9), 4-digit line
    r"(?:1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}"
    r"|" + _BEFORE +
    # European national: trunk 0 and area code (bracketed or not), then separated groups
    r"(?P<national>\(?0[1-9][0-9]{0,4}\)?)(?:[ ./-][0-9]{2,8}){1,4}"
    r")" + _AFTER
)
# digits a number of each form has (E.164: at most 15, country code included; + a trunk 0)
_PHONE_DIGITS = {"intl": (8, 16), "nanp": (10, 11), "national": (9, 13)}
# A date inside a candidate national number (05/03/2014 10:30 is not a phone).
_DATE = re.compile(r"\b[0-9]{1,2}([./-])[0-9]{1,2}\1(?:19|20)?[0-9]{2}\b"
                   r"|\b(?:19|20)[0-9]{2}([./-])[0-9]{1,2}\2[0-9]{1,2}\b")  # fmt: skip

# @handle: 1-30 letters, digits, _ and inner dots, not after a word character or a
# character of an address (e-mail addresses are masked before handles are looked for).
_HANDLE = re.compile(r"(?<![\w@.+-])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)(?![\w@])")
# "@5pm", "@10x", "@44khz": a number with a short unit is not a handle
_NUMBER_WITH_UNIT = re.compile(r"[0-9]+(?:\.[0-9]+)?[A-Za-z]{0,3}")


def luhn(digits: str) -> bool:
    """The Luhn checksum every payment-card number satisfies (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_end(number: str) -> int:
    """Length of the longest prefix of a candidate (ending at a group boundary) that is a
    card number, 0 for none: a card followed by one more short group of digits
    ("4111 1111 1111 1111 5 strings") is still found."""
    ends = [len(number)] + [i for i in range(len(number) - 1, 0, -1) if not number[i].isdigit()]
    for end in ends:
        digits = number[:end].replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn(digits):
            return end
    return 0


def _is_phone(match: re.Match) -> bool:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    kind = "intl" if match.group("intl") else "national" if match.group("national") else "nanp"
    low, high = _PHONE_DIGITS[kind]
    if kind == "intl" and match.group("intl") == "00":
        low, high = low + 2, high + 2
    if not low <= digits <= high:
        return False
    # a national number with two dashes is a part number (Fender 099-0502-000), not a phone
    return kind != "national" or (text.count("-") < 2 and _DATE.search(text) is None)


class PiiCleaner(Cleaner):
    """Mask personal data: e-mail addresses, phone numbers, URLs, payment-card numbers
    (Luhn-checked) and @handles become [EMAIL], [PHONE], [URL], [CARD], [HANDLE]; prices,
    dates, model numbers and measurements stay. Names and postal addresses are not found."""

    name = "pii"
    aliases = ("mask-pii",)

    def __init__(self, kinds: tuple[str, ...] = KINDS):
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            what = f"unknown kind(s) {', '.join(map(repr, unknown))}" if unknown else "no kinds"
            raise OptionError(f"cleaner 'pii': {what}; choose from {', '.join(KINDS)} (to mask "
                              "nothing, leave pii out of the cleaners)")  # fmt: skip
        self.kinds = tuple(k for k in KINDS if k in kinds)  # one order: the spec is canonical
        self.masks = self.kinds
        self._url = PLACEHOLDERS["url"] if "url" in self.kinds else None
        self._email = PLACEHOLDERS["email"] if "email" in self.kinds else None
        self._cards = "card" in self.kinds
        self._phones = "phone" in self.kinds
        self._handles = "handle" in self.kinds

    def clean_text(self, text: str) -> str:
        return self.mask_text(text)[0]

    def mask_text(self, text: str) -> tuple[str, dict[str, int]]:
        found: dict[str, int] = {}
        if self._url or self._email:
            text, urls, emails = mask_links(text, self._url, self._email)
            if urls:
                found["url"] = urls
            if emails:
                found["email"] = emails
        if (self._cards or self._phones) and _DIGIT_RUN.search(text):
            if self._cards:
                text = self._sub(_CARD, self._card, text, "card", found)
            if self._phones:
                text = self._sub(_PHONE, self._phone, text, "phone", found)
        if self._handles and "@" in text:
            text = self._sub(_HANDLE, self._handle, text, "handle", found)
        return text, found

    @staticmethod
    def _sub(pattern: re.Pattern, replace, text: str, kind: str, found: dict[str, int]) -> str:
        hits = [0]

        def counted(match: re.Match) -> str:
            out = replace(match)
            if out is not None:
                hits[0] += 1
                return out
            return match.group(0)

        text = pattern.sub(counted, text)
        if hits[0]:
            found[kind] = found.get(kind, 0) + hits[0]
        return text

    @staticmethod
    def _card(match: re.Match) -> str | None:
        number = match.group(0)
        end = _card_end(number)
        return PLACEHOLDERS["card"] + number[end:] if end else None

    @staticmethod
    def _phone(match: re.Match) -> str | None:
        return PLACEHOLDERS["phone"] if _is_phone(match) else None

    @staticmethod
    def _handle(match: re.Match) -> str | None:
        name = match.group(1)
        if not any(ch.isalpha() for ch in name) or _NUMBER_WITH_UNIT.fullmatch(name):
            return None
        return PLACEHOLDERS["handle"]


@hookimpl
def register_cleaners(register):
    register(PiiCleaner, aliases=("mask-pii",))
