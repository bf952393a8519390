"""A cleaner that masks prices, so "great for $19.99" and "great for $24" embed alike."""

from __future__ import annotations

import re

from recfeat.components import Cleaner

_SYMBOLS = r"[$€£¥₹]"
_CODES = r"(?:USD|EUR|GBP|JPY|CAD|AUD|INR|CHF|dollars?|euros?|bucks)"
# 1,299.00 / 1.299,00 (thousands separators) or 1200 / 19.99; never stops inside a number
_AMOUNT = r"(?:\d{1,3}(?:[,.]\d{3})+|\d+)(?:[.,]\d{1,2})?(?![\d.,]?\d)"
_PRICE = re.compile(
    rf"(?:{_SYMBOLS}\s?(?:{_AMOUNT})"  # $19.99, € 5, £1,299.00
    rf"|(?<![\w.])(?:{_AMOUNT})\s?{_SYMBOLS}"  # 19,99€
    rf"|(?<![\w.])(?:{_AMOUNT})\s?{_CODES}\b"  # 20 USD, 5 bucks
    rf"|\b{_CODES}\s?(?:{_AMOUNT}))",  # USD 20
    re.IGNORECASE,
)


class StripPrices(Cleaner):
    """Replace prices ($19.99, 19,99 €, 20 USD) with a placeholder; other numbers stay."""

    name = "strip-prices"
    aliases = ("prices",)

    def __init__(self, replacement: str = "[PRICE]"):
        self.replacement = replacement

    def clean_text(self, text: str) -> str:
        return _PRICE.sub(self.replacement, text)
