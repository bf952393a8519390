"""Request bodies (pydantic). Every body refuses unknown fields, so a typo (``text`` for
``texts``) is an error naming the field, not a silent default: a 400 on
``/v1/embeddings`` (OpenAI's answer to an unrecognised argument), a 422 on recfeat's own
routes. The embeddings body knows every field of OpenAI's request: ``user`` is accepted and
unused, ``dimensions`` is refused unless it is the model's own (MiniLM is not
Matryoshka-trained: a cut vector is a different, worse model). ``input`` takes OpenAI's four
forms, token ids included (decoded with the served model's own tokenizer)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_K = 10_000


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: a text, texts, token ids or token-id lists (``recfeat.serve.embedder.embedding_input``
    #: checks the list's items: its messages name the position and the forms)
    input: str | list[Any]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None  # OpenAI's end-user id, for its abuse monitoring: not used here


class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str]


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = None
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    history_items: list[str] = Field(default_factory=list)
    history_texts: list[str] = Field(default_factory=list)
    #: each item also says why (recfeat.serve.explain; docs/serving.md)
    explain: bool = False


class ItemText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str  # checked by the route (recfeat.serve.items.check_item_id): one 400 for every bad id
    text: str


class ItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Item]
