"""Built-in recommendation models, registered like any third-party plugin.

Submodules are imported inside the hook so ``import recfeat.plugins.models`` stays cheap.
"""

from __future__ import annotations

from recfeat.plugin.hookspecs import hookimpl


def model_classes() -> list[type]:
    """Every built-in model class, in the order they are listed."""
    from .baselines import Bias, GlobalMean, Popularity, Random
    from .content import ContentModel
    from .ease import EASE, EASEText
    from .factorization import MatrixFactorization
    from .hybrid import Hybrid
    from .hybrid_als import HybridALS
    from .implicit_feedback import ALS, BPR
    from .next_item import ItemKNNLast, TextKNNLast
    from .regression import GBMText, LinearText, RidgeText, SGDText
    from .sequential import SASRec, SASRecText

    return [
        GlobalMean,
        Bias,
        Popularity,
        Random,
        LinearText,
        RidgeText,
        SGDText,
        GBMText,
        MatrixFactorization,
        ALS,
        BPR,
        EASE,
        ContentModel,
        Hybrid,
        HybridALS,
        EASEText,
        ItemKNNLast,
        TextKNNLast,
        SASRec,
        SASRecText,
    ]


@hookimpl
def register_models(register):
    for cls in model_classes():
        register(cls)
