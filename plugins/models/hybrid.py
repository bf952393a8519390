"""Hybrid factorisation, LightFM-style: item factors are an ID embedding PLUS a learned
linear projection of the item's text vector, so an item never seen in training still gets a
score from its text.

    q_i = e_i + W x_i          (x_i: the item's text vector, centred and scaled)
    p_u = e_u + V y_u          (y_u: the user's profile, mean x of the user's training items)
    s(u, i) = p_u . q_i + b_i + w . x_i   (+ mu + b_u with the rating loss)

For a cold item e_i = 0 and b_i = 0, so the score comes from the text terms alone. To make
those terms carry signal on their own, training drops the item's ID part (e_i, b_i) for a
random ``id_dropout`` share of the examples (as in DropoutNet), otherwise the ID embeddings
absorb everything and the text projection stays untrained.

Losses (``loss``): ``bpr`` (default; ranking: one uniformly sampled non-interacted training
item per positive, -log sigmoid(s_pos - s_neg)) or ``rating`` (squared error on ratings; then
``predict`` estimates ratings). Trained with Adam in torch on CPU, full-batch-free minibatches,
seeded, single process.
"""

from __future__ import annotations

import numpy as np

from recfeat.components import RecModel
from recfeat.errors import OptionError
from recfeat.plugin.options import check_ranges

from .content import item_vectors, lookup, mean_profiles


class Hybrid(RecModel):
    """Factorisation whose item factors add a learned projection of item text (cold items OK)."""

    name = "hybrid"
    tune_space = {"factors": [16, 32, 64], "reg": [1e-5, 1e-4, 1e-3]}  # --tune, 9 points
    uses_text = True
    cold_start_items = True

    def __init__(
        self,
        loss: str = "bpr",
        factors: int = 32,
        epochs: int = 30,
        learning_rate: float = 0.01,
        reg: float = 1e-4,
        id_dropout: float = 0.5,
        batch_size: int = 512,
        seed: int = 0,
    ):
        self.loss = loss
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.id_dropout = id_dropout
        self.batch_size = batch_size
        self.seed = seed

    def validate(self) -> None:
        check_ranges(self, {"factors": (1, 10_000), "epochs": (1, 100_000),
                            "learning_rate": (1e-12, 100), "reg": (0, None), "id_dropout": (0, 0.99),
                            "batch_size": (1, 10_000_000)})  # fmt: skip

    @property
    def predicts_ratings(self) -> bool:  # type: ignore[override]
        return self.loss == "rating"

    @property
    def needs_ratings(self) -> bool:  # type: ignore[override]
        return self.loss == "rating"

    @property
    def ranks_items(self) -> bool:  # type: ignore[override]
        return self.loss != "rating"  # the bpr loss trains a ranker, the rating loss does not

    def _text(self, vecs: np.ndarray, found: np.ndarray) -> np.ndarray:
        return ((vecs - self.text_mean_) / self.text_scale_) * found[:, None]

    def _fit(self, u, i, r, train, item_features, user_features):
        import torch

        # Tiny per-batch tensors: extra intra-op threads only contend (measured on Musical
        # Instruments, 2 busy cores: 1 thread 10 s, 2 threads 129 s).
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._train(u, i, r, item_features, user_features)
        finally:
            torch.set_num_threads(previous)

    def _train(self, u, i, r, item_features, user_features):
        import torch

        if self.loss not in ("bpr", "rating"):
            raise OptionError(f"hybrid: loss must be 'bpr' or 'rating' (got {self.loss!r})")
        n_u, n_i = len(self.users_), len(self.items_)
        self.item_features_ = item_features
        if item_features is not None:
            vecs, found = lookup(item_features, self.items_)
        else:
            vecs, found = np.zeros((n_i, self.feature_dim_)), np.zeros(n_i, dtype=bool)
        self.n_items_without_features_ = int((~found).sum())
        base = vecs[found] if found.any() else vecs
        self.text_mean_ = base.mean(axis=0)
        self.text_scale_ = float(np.sqrt(((base - self.text_mean_) ** 2).sum(axis=1).mean())) or 1.0
        x_items = self._text(vecs, found)
        profiles = mean_profiles(u, i, n_u, x_items)
        if user_features is not None:
            uvec, ufound = lookup(user_features, self.users_)
            profiles[ufound] = self._text(uvec, ufound)[ufound]
        self.user_text_ = profiles

        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        dim, k = x_items.shape[1], self.factors
        params = {
            "e_u": torch.randn(n_u, k, generator=gen) * 0.01,
            "e_i": torch.randn(n_i, k, generator=gen) * 0.01,
            "b_i": torch.zeros(n_i),
            "b_u": torch.zeros(n_u),
            "W": torch.randn(dim, k, generator=gen) * (1.0 / np.sqrt(dim)),
            "V": torch.randn(dim, k, generator=gen) * (1.0 / np.sqrt(dim)),
            "w": torch.zeros(dim),
        }
        for p in params.values():
            p.requires_grad_(True)
        opt = torch.optim.Adam(params.values(), lr=self.learning_rate)
        x_t = torch.as_tensor(x_items, dtype=torch.float32)
        y_t = torch.as_tensor(profiles, dtype=torch.float32)
        u_t, i_t = torch.as_tensor(u), torch.as_tensor(i)
        mu = float(r.mean())
        target = torch.as_tensor(r - mu, dtype=torch.float32)

        def score(uu, ii, keep):
            q = params["e_i"][ii] * keep[:, None] + x_t[ii] @ params["W"]
            p = params["e_u"][uu] + y_t[uu] @ params["V"]
            return (p * q).sum(1) + params["b_i"][ii] * keep + x_t[ii] @ params["w"]

        n = len(u)
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                uu, ii = u_t[idx], i_t[idx]
                keep = (torch.rand(len(idx), generator=gen) >= self.id_dropout).float()
                if self.loss == "bpr":
                    jj = torch.randint(0, n_i, (len(idx),), generator=gen)
                    keep_j = (torch.rand(len(idx), generator=gen) >= self.id_dropout).float()
                    diff = score(uu, ii, keep) - score(uu, jj, keep_j)
                    loss = -torch.nn.functional.logsigmoid(diff).mean()
                    touched = (params["e_u"][uu], params["e_i"][ii], params["e_i"][jj])
                else:
                    pred = score(uu, ii, keep) + params["b_u"][uu]
                    loss = ((pred - target[idx]) ** 2).mean()
                    touched = (params["e_u"][uu], params["e_i"][ii], params["b_u"][uu][:, None])
                penalty = sum((t**2).sum(1).mean() for t in touched)
                penalty = penalty + (params["W"] ** 2).sum() / n + (params["V"] ** 2).sum() / n
                opt.zero_grad()
                (loss + self.reg * penalty).backward()
                opt.step()

        with torch.no_grad():
            self.mu_ = mu
            self.user_emb_ = params["e_u"].numpy().astype(np.float64)
            self.item_emb_ = params["e_i"].numpy().astype(np.float64)
            self.item_bias_ = params["b_i"].numpy().astype(np.float64)
            self.user_bias_ = params["b_u"].numpy().astype(np.float64)
            self.W_ = params["W"].numpy().astype(np.float64)
            self.V_ = params["V"].numpy().astype(np.float64)
            self.w_ = params["w"].numpy().astype(np.float64)

    # -- scoring ---------------------------------------------------------------------------
    def _user_side(self, users):
        uc = self.user_codes(users)
        known = uc >= 0
        uc0 = np.maximum(uc, 0)
        p = (self.user_emb_[uc0] + self.user_text_[uc0] @ self.V_) * known[:, None]
        b = np.where(known, self.user_bias_[uc0], 0.0)
        return p, b, known

    def _item_side(self, items, item_features):
        ic = self.item_codes(items)
        known = ic >= 0
        ic0 = np.maximum(ic, 0)
        vecs, found = item_vectors(self, items, item_features)
        x = self._text(vecs, found)
        q = self.item_emb_[ic0] * known[:, None] + x @ self.W_
        b = np.where(known, self.item_bias_[ic0], 0.0) + x @ self.w_
        return q, b, known | found

    def _score_matrix(self, users, items, item_features):
        p, bu, known_u = self._user_side(users)
        q, bi, scorable = self._item_side(items, item_features)
        scores = p @ q.T + bi[None, :]
        if self.loss == "rating":
            scores = scores + self.mu_ + bu[:, None]
        elif not known_u.all():
            # Unknown users in ranking mode: rank by the item terms only (non-personalised).
            scores[~known_u] = bi[None, :]
        scores[:, ~scorable] = np.nan
        return scores

    def _score_pairs(self, users, items, item_features):
        p, bu, _ = self._user_side(users)
        q, bi, scorable = self._item_side(items, item_features)
        out = (p * q).sum(1) + bi
        if self.loss == "rating":
            out = out + self.mu_ + bu
        out[~scorable] = np.nan
        return out
