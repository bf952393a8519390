"""Built-in cleaners on tricky input, and cleaner chains built by name."""

from __future__ import annotations

import json

import pytest

from recfeat import get_registry
from recfeat.errors import DataError, OptionError, UnknownComponentError, UsageError
from recfeat.extraction.cleaning import DEFAULT_CLEANERS, CleanerChain, build_cleaner_chain


def clean(name: str, text: str, **options) -> str:
    return get_registry("cleaner").create(name, **options).clean_text(text)


def test_all_builtin_cleaners_are_registered():
    names = set(get_registry("cleaner").names())
    assert {
        "html", "mask-urls", "nfkc", "control-chars", "emoji", "whitespace", "lowercase",
        "stopwords", "truncate",
    } <= names
    assert get_registry("cleaner").get("urls") is get_registry("cleaner").get("mask-urls")
    assert get_registry("cleaner").get("max-chars") is get_registry("cleaner").get("truncate")


# -- html ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("AT&amp;T &#39;quoted&#39; &quot;x&quot; caf&eacute;", "AT&T 'quoted' \"x\" café"),
        ("a&nbsp;b", "a b"),  # non-breaking space becomes a plain space
        ("&amp;amp; unescapes once", "&amp; unescapes once"),
        ("no tags & no entities <3", "no tags & no entities <3"),  # a heart is not a tag
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
    ],
)
def test_html_entities(raw, expected):
    assert clean("html", raw) == expected


def test_html_drops_script_style_and_comments_keeps_word_boundaries():
    raw = (
        "<html><head><style>p { color: red }</style></head><body>"
        "<p>Great<br/>guitar</p><script>var s = '<b>not text</b>';</script>"
        "<!-- a comment --><div>Strings <b>sound <i>bright</i></b></div></body></html>"
    )
    out = " ".join(clean("html", raw).split())
    assert out == "Great guitar Strings sound bright"


def test_html_broken_markup():
    # unclosed tags, stray end tags and a tag cut off at the end (truncated HTML)
    assert " ".join(clean("html", "</p>Nice <b>bold <i>and <div>unclosed").split()) == "Nice bold and unclosed"
    assert clean("html", 'Text then a cut <a href="http://x.com/').strip() == "Text then a cut"


# -- urls and e-mails ------------------------------------------------------------------------------


def test_mask_urls_with_query_strings_and_punctuation():
    raw = (
        "Buy at https://www.amazon.com/dp/B000?ref=sr_1&qid=12#top. "
        "Wiki (http://en.wikipedia.org/wiki/Fender_(company)), or www.guitarcenter.com! "
        "FTP: ftp://files.example.org/a.zip"
    )
    assert clean("mask-urls", raw) == "Buy at [URL]. Wiki ([URL]), or [URL]! FTP: [URL]"


def test_mask_emails_and_custom_tokens():
    raw = "Mail john.doe+strings@mail.co.uk or mailto:help@shop.com, not @handles or a@b"
    assert clean("urls", raw) == "Mail [EMAIL] or [EMAIL], not @handles or a@b"
    out = clean("urls", "see http://x.org and me@x.org", url_token="<u>", email_token="<e>")
    assert out == "see <u> and <e>"


def test_mask_urls_leaves_plain_text_alone():
    text = "The www of strings: 3.5mm jack, e.g. v1.2 - no links here."
    assert clean("mask-urls", text) == text


# -- unicode ---------------------------------------------------------------------------------------


def test_nfkc_fullwidth_and_compatibility_forms():
    assert clean("nfkc", "１２３ ＡＢＣ！") == "123 ABC!"
    assert clean("nfkc", "ﬁne ① ㎏") == "fine 1 kg"
    assert clean("nfkc", "e\u0301") == "\u00e9"  # composed
    assert clean("nfkc", "吉他") == "吉他"


def test_control_chars_removes_invisible_keeps_words_apart():
    raw = "a\u200bb\u00adc\ufeffd\u200ee\x00f\x1b[0m\ttab\nline\r\nend\u2028x"
    assert clean("control-chars", raw) == "abcdef[0m tab line  end x"


def test_control_chars_joiners_kept_only_where_they_carry_meaning():
    persian = "می\u200cخواهم"  # ZWNJ is part of the spelling
    family = "👨\u200d👩\u200d👧"  # ZWJ joins an emoji sequence
    assert clean("control-chars", persian) == persian
    assert clean("control-chars", family) == family
    assert clean("control-chars", "gui\u200dtar \u200dx") == "guitar x"  # noise between ASCII
    assert clean("control-chars", persian, keep_joiners=False) == "میخواهم"


def test_control_chars_removes_lone_surrogates():
    assert clean("control-chars", "ok\udcff!") == "ok!"


# -- emoji -----------------------------------------------------------------------------------------


def test_emoji_sequences_next_to_cjk():
    raw = "好👍🏽吉他👨\u200d👩\u200d👧\u200d👦很棒🇯🇵！ギター😀เสียงดี❤️"
    assert clean("emoji", raw) == "好吉他很棒！ギターเสียงดี"


def test_emoji_keycaps_flags_and_text_symbols():
    assert clean("emoji", "Rated 5️⃣ 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f #1") == "Rated   #1"
    # text-presentation symbols and CJK symbols stay; only emoji presentation goes
    assert clean("emoji", "Fender© Strat™ → 〰 ½ ok") == "Fender© Strat™ → 〰 ½ ok"
    assert clean("emoji", "love ❤ it ☺️", replacement=" ") == "love   it  "


def test_emoji_is_not_in_the_default_chain():
    assert "emoji" not in DEFAULT_CLEANERS
    assert build_cleaner_chain().clean_text("nice 👍") == "nice 👍"


# -- whitespace, case -------------------------------------------------------------------------------


def test_whitespace_collapses_unicode_spaces():
    assert clean("whitespace", "  a \u3000 b\n\n\t c\xa0\u2009d  ") == "a b c d"
    assert clean("whitespace", " a  b \n\n c ", keep_newlines=True) == "a b\nc"


def test_lowercase():
    assert clean("lowercase", "Straße GUITAR Σ") == "straße guitar σ"
    assert clean("lowercase", "Straße", casefold=True) == "strasse"


# -- stop words -------------------------------------------------------------------------------------


def test_stopwords_never_touch_chinese():
    raw = "这把吉他的音色非常好，the sound is great"
    assert clean("stopwords", raw) == "这把吉他的音色非常好，sound great"


def test_stopwords_leave_non_latin_scripts_and_glued_words_intact():
    for text in ["เสียงดีมาก", "ギターの音がいい", "Звук отличный", "صوت رائع", "这个the吉他"]:
        assert clean("stopwords", text) == text
    # hyphenated and digit-glued tokens are not words to drop
    assert clean("stopwords", "all-in-one the1 x") == "all-in-one the1 x"


def test_stopwords_spacing_and_negations():
    out = clean("stopwords", "This is not the best of the lot.")
    assert out == "not best lot."
    assert clean("stopwords", "This is not good", keep_negations=False) == "good"
    assert clean("stopwords", "good, and\nthe end") == "good,\nend"


def test_stopwords_other_languages_and_extra_words():
    assert clean("stopwords", "Das ist nicht der beste Klang", language="de") == "nicht beste Klang"
    assert clean("stopwords", "la guitare est très belle", language="fr") == "guitare belle"
    assert clean("stopwords", "great guitar amp", extra=["amp"]) == "great guitar"


def test_stopwords_unknown_language_is_an_option_error():
    with pytest.raises(OptionError, match="Available: en"):
        get_registry("cleaner").create("stopwords", language="zh")


# -- truncate -----------------------------------------------------------------------------------------


def test_truncate_on_word_boundary():
    assert clean("truncate", "hello world this is long", max_chars=13) == "hello world"
    assert clean("truncate", "short", max_chars=13) == "short"
    assert clean("max-chars", "a" * 50, max_chars=10) == "a" * 10  # no space: hard cut


def test_truncate_without_spaces_and_never_splitting_marks():
    assert clean("truncate", "这把吉他的音色非常好", max_chars=4) == "这把吉他"
    assert clean("truncate", "e\u0301e\u0301e\u0301", max_chars=3) == "e\u0301"
    assert clean("truncate", "ok 👍🏽", max_chars=4) == "ok"


def test_truncate_rejects_nonpositive():
    with pytest.raises(OptionError, match="max_chars"):
        get_registry("cleaner").create("truncate", max_chars=0)


# -- chains ---------------------------------------------------------------------------------------------


def test_default_chain():
    chain = build_cleaner_chain()
    assert chain.names == list(DEFAULT_CLEANERS)
    raw = "<p>Ｇｒｅａｔ&nbsp;ｓｏｕｎｄ!</p>\u200b\n<script>x()</script>  这把吉他很好"
    assert chain.clean_text(raw) == "Great sound! 这把吉他很好"


def test_chain_from_names_dicts_and_string_agree():
    a = build_cleaner_chain("html, urls,truncate")
    b = build_cleaner_chain(["html", {"use": "mask-urls"}, {"use": "max-chars"}])
    assert a.names == b.names == ["html", "mask-urls", "truncate"]  # canonical names
    assert a.spec() == b.spec()
    c = build_cleaner_chain([{"use": "truncate", "max_chars": 5}, "whitespace"])
    assert c.clean(["abc defgh", None]) == ["abc", ""]
    spec = c.spec()
    assert spec[0] == {"use": "truncate", "max_chars": 5}
    assert json.loads(json.dumps(spec)) == spec


def test_chain_spec_rebuilds_the_same_chain():
    chain = build_cleaner_chain([{"use": "stopwords", "language": "de", "extra": ("klang",)}])
    again = build_cleaner_chain(chain.spec())
    assert again.spec() == chain.spec()
    assert again.clean_text("der Klang ist gut") == chain.clean_text("der Klang ist gut") == "gut"


def test_empty_chain_changes_nothing():
    chain = build_cleaner_chain([])
    assert isinstance(chain, CleanerChain) and len(chain) == 0
    assert chain.clean(["  <b>x</b> "]) == ["  <b>x</b> "]
    assert build_cleaner_chain("").names == []


def test_unknown_cleaner_names_the_closest_match():
    with pytest.raises(UnknownComponentError, match="Did you mean 'whitespace'"):
        build_cleaner_chain("html,whitespase")


def test_bad_option_is_an_option_error():
    with pytest.raises(OptionError, match="(?i)valid options: max_chars"):
        build_cleaner_chain([{"use": "truncate", "max_len": 5}])
    with pytest.raises(OptionError, match="max_chars"):
        build_cleaner_chain([{"use": "truncate", "max_chars": "many"}])


def test_malformed_specs():
    with pytest.raises(UsageError, match="no 'use' key"):
        build_cleaner_chain([{"max_chars": 5}])
    with pytest.raises(UsageError, match="must be a name"):
        build_cleaner_chain([42])


def test_chain_refuses_non_text():
    with pytest.raises(DataError, match="text 1 is a float"):
        build_cleaner_chain().clean(["ok", float("nan")])
