"""Sparse "LLM-token" features: bag-of-tokens over a language model's own token ids.

Cheap features for downstream models that share the encoder's vocabulary: ``hashed-bow``
(stateless hashing, nothing to fit) and ``tfidf`` (IDF fitted on a corpus). Texts are
tokenized without special tokens ([CLS], [SEP], <|endoftext|>), and any special token that
appears literally in a text is dropped too, so only text tokens are counted. Outputs are
``scipy.sparse.csr_matrix`` of float32, rows in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from recfeat.components import TokenFeaturizer
from recfeat.components.encoder import prefixed_names, texts_of
from recfeat.errors import NotFittedError, OptionError
from recfeat.plugin.hookspecs import hookimpl
from recfeat.plugins.tokenizers import HFTokenizer


def _pretokenized(doc):
    """Analyzer for already tokenized documents (module level so vectorizers pickle)."""
    return doc


class _TokenIdsMixin:
    """Shared: the model's tokenizer, without special tokens, as lists of id strings."""

    model: str
    max_length: int

    def _tokenizer(self):
        if getattr(self, "_tok", None) is None:
            self._tok = HFTokenizer(
                model=self.model, max_length=self.max_length, add_special_tokens=False
            )
        return self._tok

    def token_ids(self, texts: Sequence[str]) -> list[list[str]]:
        """Token ids of each text as strings (vectorizer features), special tokens removed.
        ``texts``: a list, Series or one-column frame (what a scikit-learn step passes)."""
        tok = self._tokenizer()
        special = tok.special_ids
        batch = tok.tokenize(["" if t is None else t for t in texts_of(texts)])
        return [[str(i) for i in row if i not in special] for row in batch.ids]

    def __getstate__(self):
        state = super().__getstate__()
        state["_tok"] = None  # the tokenizer reloads from `model` on first use
        return state


class HashedBowFeaturizer(_TokenIdsMixin, TokenFeaturizer):
    """Hashed bag of the model's token ids (stateless; scikit-learn HashingVectorizer)."""

    name = "hashed-bow"
    aliases = ("hashed-tokens",)

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 512,
        n_features: int = 2**18,
        binary: bool = False,
        norm: Literal["l1", "l2"] | None = "l2",
    ):
        if n_features < 1:
            raise OptionError(f"hashed-bow: n_features must be at least 1 (got {n_features})")
        self.model = model
        self.max_length = max_length
        self.n_features = n_features
        self.binary = binary
        self.norm = norm
        self._tok = None

    def _vectorizer(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        # Counts stay non-negative (alternate_sign=False): they are term frequencies, and
        # models such as naive Bayes or NMF downstream need non-negative input.
        return HashingVectorizer(
            analyzer=_pretokenized,
            n_features=self.n_features,
            binary=self.binary,
            norm=self.norm,
            alternate_sign=False,
            dtype=np.float32,
        )

    def transform(self, texts: Sequence[str]):
        return self._vectorizer().transform(self.token_ids(texts)).tocsr()

    def get_feature_names_out(self, input_features=None):
        """``hashed-bow0`` .. one name per hash bucket (a bucket is no single token)."""
        return prefixed_names(self, self.n_features)


class TfidfFeaturizer(_TokenIdsMixin, TokenFeaturizer):
    """TF-IDF over the model's token ids, fitted on a corpus (scikit-learn TfidfVectorizer)."""

    name = "tfidf"
    aliases = ("tfidf-tokens",)

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 512,
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        max_features: int | None = None,
        sublinear_tf: bool = False,
        norm: Literal["l1", "l2"] | None = "l2",
    ):
        self.model = model
        self.max_length = max_length
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.norm = norm
        self._tok = None

    def fit(self, texts: Sequence[str], y=None):
        self._fit(self.token_ids(texts))
        return self

    def _fit(self, docs: list[list[str]]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            analyzer=_pretokenized,
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            sublinear_tf=self.sublinear_tf,
            norm=self.norm,
            dtype=np.float32,
        )
        try:
            matrix = vec.fit_transform(docs)
        except ValueError as exc:  # e.g. min_df/max_df leave no terms, or an empty corpus
            raise OptionError(f"tfidf: cannot fit on this corpus: {exc}") from None
        self.vectorizer_ = vec
        # Vocabulary as token ids (int) -> column, and the IDF of each column.
        self.vocabulary_ = {int(k): int(v) for k, v in vec.vocabulary_.items()}
        self.idf_ = vec.idf_.astype(np.float32)
        return matrix.tocsr()

    def transform(self, texts: Sequence[str]):
        if not hasattr(self, "vectorizer_"):
            raise NotFittedError("tfidf features are not fitted; call fit(texts) first")
        return self.vectorizer_.transform(self.token_ids(texts)).tocsr()

    def fit_transform(self, texts: Sequence[str], y=None):
        """Fit and transform with one tokenization pass."""
        return self._fit(self.token_ids(texts))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "vectorizer_")

    def token_columns(self) -> np.ndarray:
        """The tokenizer id of every column, in column order (saved beside the features so
        explanations can decode columns to words)."""
        if not hasattr(self, "vectorizer_"):
            raise NotFittedError("tfidf features are not fitted; call fit(texts) first")
        return np.asarray(sorted(self.vocabulary_, key=self.vocabulary_.__getitem__), dtype=np.int64)

    def feature_names(self) -> list[str]:
        """The token string of every column, in column order."""
        return self._tokenizer().convert_ids_to_tokens(self.token_columns().tolist())

    def get_feature_names_out(self, input_features=None):
        """The token string of every column, as scikit-learn's TfidfVectorizer names its terms."""
        return np.asarray(self.feature_names(), dtype=object)


@hookimpl
def register_tokenizers(register):
    register(HashedBowFeaturizer, aliases=("hashed-tokens",))
    register(TfidfFeaturizer, aliases=("tfidf-tokens",))
