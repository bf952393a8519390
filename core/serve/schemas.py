"""Request bodies (pydantic). OpenAI's embeddings request ignores fields it does not use
(clients send ``user``, ``dimensions``...); recfeat's own bodies refuse unknown fields, so a
typo (``text`` for ``texts``) is a 422 naming the field, not a silent default."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_K = 10_000


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: str | list[str]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"


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
