"""The safe model file: loading it executes nothing from the file.

A model file is one zip archive (written atomically, so it appears whole or not at all):

- ``bundle.json``: ``{"format": "recfeat-model", "version": 2, "header": {...}, "seen":
  {user: [items]}, "snippets": {item: text}, "model": {"name": <registry name>, "class":
  "module.Class", "options": <node>, "attributes": {name: <node>}}}``;
- ``arrays/<n>.npy``: every numpy array, read back with ``allow_pickle=False``.

Reading a file creates the model from the registry BY NAME with its saved options (validated
like any ``-O``), then sets only its fitted attributes (names ending in ``_``). Every value
is one typed JSON node (``"t"`` says the type): JSON scalars, non-finite floats, lists,
tuples, sets, dicts, numpy arrays and scalars, ``Features``, numpy random generators, pandas
frames, scipy sparse matrices, nested recfeat models, and scikit-learn estimators. The
estimators go through ``skops.io`` and are loaded only when every type in them is one skops
trusts by default or one listed in ``TRUSTED_SKLEARN_TYPES``. Anything else cannot be saved
(``ModelFormatError`` names the attribute and its type), so a new model's author learns at
once which attribute to store differently, or to list in the class's ``unsaved_attributes``
(a tuple of fitted-attribute names scoring does not need; they are not written).

Old files (joblib pickles from earlier versions) can run code while they load: they are
opened only with ``trust=True`` (``recfeat recommend --trust``).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

from recfeat.atomic import atomic_path
from recfeat.errors import DataError, ModelFormatError, RecfeatError, UsageError
from recfeat.jsonable import jsonable
from recfeat.plugin.registry import get_registry

FORMAT = "recfeat-model"
VERSION = 2
BUNDLE_MEMBER = "bundle.json"
ARRAY_PREFIX = "arrays/"
ZIP_MAGIC = b"PK\x03\x04"
# A pickle starts with the PROTO opcode; joblib's compressed pickles with their codec's magic.
PICKLE_MAGICS = (
    b"\x80",
    b"ZF",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"\x5d\x00\x00",
    b"\x04\x22\x4d\x18",
)
# Types inside scikit-learn estimators that skops does not trust by default but that only
# hold arrays (HistGradientBoostingRegressor's trees). A new sub-estimator whose save fails
# with "untrusted types" lists what to review and add here.
TRUSTED_SKLEARN_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_JSON_SCALARS = (str, int, bool, type(None))


# -- writing ---------------------------------------------------------------------------------
class _Writer:
    def __init__(self, owner: str):
        self.owner = owner  # "model 'mf'", for messages
        self.arrays: dict[str, Any] = {}

    def _array(self, arr) -> str:
        ref = f"{ARRAY_PREFIX}{len(self.arrays)}.npy"
        self.arrays[ref] = arr
        return ref

    def fail(self, where: str, value: Any, why: str = "") -> ModelFormatError:
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        return ModelFormatError(
            f"cannot save {self.owner}: {where} is a {kind}{why}, which the safe model file "
            "cannot store; keep fitted state as numpy arrays, JSON values, Features or "
            "scikit-learn estimators (see recfeat.training.model_file), or, if scoring does "
            "not need it, list it in the class's unsaved_attributes"
        )

    def encode(self, value: Any, where: str) -> dict[str, Any]:
        import numpy as np

        if isinstance(value, bool) or value is None or isinstance(value, str):
            return {"t": "value", "v": value if not isinstance(value, str) else str(value)}
        if isinstance(value, int) and not isinstance(value, np.integer):
            return {"t": "value", "v": int(value)}
        if isinstance(value, float) and not isinstance(value, np.floating):
            return {"t": "float", "v": value if math.isfinite(value) else repr(value)}
        if isinstance(value, np.generic):  # numpy scalar: a 0-d array keeps its dtype
            return {**self.encode(np.asarray(value), where), "scalar": True}
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if isinstance(value, (list, tuple, set, frozenset)):
            kind = {list: "list", tuple: "tuple", set: "set", frozenset: "frozenset"}
            base = next(k for k in kind if isinstance(value, k))
            if base is tuple and type(value) is not tuple:  # a namedtuple: not restorable
                raise self.fail(where, value)
            items = [self.encode(v, f"{where}[{n}]") for n, v in enumerate(value)]
            return {"t": kind[base], "items": items}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value) and all(
                isinstance(v, _JSON_SCALARS) for v in value.values()
            ):
                return {"t": "jsondict", "v": {str(k): v for k, v in value.items()}}
            return {
                "t": "dict",
                "items": [
                    [self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                    for k, v in value.items()
                ],
            }
        return self._encode_object(value, where)

    def _encode_array(self, arr, where: str) -> dict[str, Any]:
        import numpy as np

        if arr.dtype.hasobject:
            flat = arr.reshape(-1)
            # str ids (the usual object array) become a unicode array; numpy's U dtype
            # drops trailing NULs, so such strings take the item-by-item form.
            if all(type(x) is str or isinstance(x, np.str_) for x in flat) and not any(
                x.endswith("\x00") for x in flat
            ):
                ref = self._array(np.asarray(flat.tolist(), dtype=str).reshape(arr.shape))
                return {"t": "array", "ref": ref, "object": True, "shape": list(arr.shape)}
            items = [self.encode(x, f"{where}[{n}]") for n, x in enumerate(flat.tolist())]
            return {"t": "objarray", "shape": list(arr.shape), "items": items}
        return {"t": "array", "ref": self._array(np.ascontiguousarray(arr))}

    def _encode_object(self, value: Any, where: str) -> dict[str, Any]:
        import numpy as np

        from recfeat.components.model import RecModel
        from recfeat.data.features import Features

        if isinstance(value, Features):
            return {
                "t": "features",
                "ids": self.encode(value.ids, f"{where}.ids"),
                "vectors": self.encode(value.vectors, f"{where}.vectors"),
                "manifest": self.encode(dict(value.manifest), f"{where}.manifest"),
                "tokens": self.encode(value.tokens, f"{where}.tokens"),
                "token_columns": self.encode(value.token_columns, f"{where}.token_columns"),
            }
        if isinstance(value, RecModel):
            return {"t": "model", **encode_model(value, self, where)}
        if isinstance(value, np.random.Generator):
            name = type(value.bit_generator).__name__
            if name not in BIT_GENERATORS:
                raise self.fail(where, value, f" with bit generator {name}")
            return {"t": "generator", "bit_generator": name,
                    "state": self.encode(value.bit_generator.state, f"{where}.state")}  # fmt: skip
        module = type(value).__module__ or ""
        if module.startswith("pandas") and type(value).__name__ == "DataFrame":
            return self._encode_frame(value, where)
        if module.startswith("scipy.sparse") and getattr(value, "format", None) in ("csr", "csc"):
            return {
                "t": "sparse", "format": value.format, "shape": list(value.shape),
                "data": self.encode(value.data, where), "indices": self.encode(value.indices, where),
                "indptr": self.encode(value.indptr, where),
            }  # fmt: skip
        if module.startswith("sklearn."):
            return self._encode_sklearn(value, where)
        raise self.fail(where, value)

    def _encode_frame(self, frame, where: str) -> dict[str, Any]:
        columns = [str(c) for c in frame.columns]
        if len(set(columns)) != len(columns) or list(frame.columns) != columns:
            raise self.fail(where, frame, " with non-string or repeated column names")
        return {
            "t": "frame",
            "columns": columns,
            "dtypes": [str(d) for d in frame.dtypes],
            "data": [self.encode(frame[c].to_numpy(), f"{where}[{c!r}]") for c in columns],
            "index": self.encode(frame.index.to_numpy(), f"{where}.index"),
        }

    def _encode_sklearn(self, est, where: str) -> dict[str, Any]:
        import numpy as np
        import skops.io as sio  # a core dependency, imported here to keep start-up light

        try:
            blob = sio.dumps(est)
        except Exception as exc:  # noqa: BLE001 - skops refuses what it cannot represent
            raise self.fail(where, est, f" that skops cannot store ({exc})") from None
        untrusted = sorted(set(sio.get_untrusted_types(data=blob)) - set(TRUSTED_SKLEARN_TYPES))
        if untrusted:
            raise ModelFormatError(
                f"cannot save {self.owner}: {where} holds types the loader would not trust "
                f"({', '.join(untrusted)}); review them and add them to "
                "recfeat.training.model_file.TRUSTED_SKLEARN_TYPES if they only hold data"
            )
        ref = self._array(np.frombuffer(blob, dtype=np.uint8))
        return {
            "t": "sklearn",
            "ref": ref,
            "class": f"{type(est).__module__}.{type(est).__qualname__}",
        }


def fitted_attributes(model) -> dict[str, Any]:
    """The attributes ``fit`` set: public names ending in ``_`` (scikit-learn's rule), less
    the class's ``unsaved_attributes`` (state scoring does not need, such as a third-party
    library's own model object kept for inspection; absent after loading)."""
    skip = set(getattr(type(model), "unsaved_attributes", ()) or ())
    return {
        k: v for k, v in vars(model).items()
        if k.endswith("_") and not k.startswith("_") and k.isidentifier() and k not in skip
    }  # fmt: skip


def encode_model(model, writer: _Writer, where: str = "model") -> dict[str, Any]:
    name = type(model).name or ""
    if not name:
        raise ModelFormatError(
            f"cannot save {where}: {type(model).__qualname__} has no registry name (set name = ...)"
        )
    options = model.get_params(deep=False)
    return {
        "name": name,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "options": writer.encode(options, f"{where} options"),
        "attributes": {
            k: writer.encode(v, f"{where} attribute {k!r}")
            for k, v in fitted_attributes(model).items()
        },
    }


def _plain_json(value: Any, where: str) -> Any:
    """Header, seen and snippets are plain JSON: fail early on anything else."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"cannot save the model: {where} is not plain JSON ({exc})"
        ) from None


def save_bundle(bundle: dict[str, Any], path: str | Path) -> Path:
    """Write ``bundle`` as a safe model file, atomically. Everything is encoded in memory
    first, so a model that cannot be stored leaves no file behind."""
    import numpy as np

    model = bundle["model"]
    writer = _Writer(f"model {type(model).name or type(model).__qualname__!r}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "header": _plain_json(jsonable(bundle["header"], nonfinite="repr"), "the header"),
        "seen": _plain_json(bundle.get("seen", {}), "seen"),
        "snippets": _plain_json(bundle.get("snippets", {}), "snippets"),
        "model": encode_model(model, writer),
    }
    text = json.dumps(payload, allow_nan=False)  # ASCII: lone surrogates in ids survive too
    out = Path(path)
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            zf.writestr(BUNDLE_MEMBER, text)
            for ref, arr in writer.arrays.items():
                with zf.open(ref, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, arr, allow_pickle=False)
    return out


# -- reading ---------------------------------------------------------------------------------
class _Reader:
    def __init__(self, zf: zipfile.ZipFile, path: Path):
        self.zf, self.path = zf, path

    def bad(self, why: str) -> DataError:
        return DataError(
            f"cannot read model file {self.path}: {why}; write it again with recfeat train"
        )

    def _array(self, ref: Any):
        import numpy as np

        if not isinstance(ref, str) or not ref.startswith(ARRAY_PREFIX):
            raise self.bad(f"bad array reference {ref!r}")
        try:
            with self.zf.open(ref) as fh:
                return np.lib.format.read_array(fh, allow_pickle=False)
        except KeyError:
            raise self.bad(f"array {ref} is missing") from None
        except ValueError as exc:  # object arrays need pickle: refused, as they should be
            raise self.bad(f"array {ref} is not plain data ({exc})") from None

    def decode(self, node: Any) -> Any:
        import numpy as np

        if not isinstance(node, dict) or not isinstance(node.get("t"), str):
            raise self.bad(f"malformed value {str(node)[:60]!r}")
        t = node["t"]
        if t == "value":
            return node.get("v")
        if t == "float":
            v = node.get("v")
            if isinstance(v, str) and v in ("nan", "inf", "-inf"):
                return float(v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            raise self.bad(f"bad float {v!r}")
        if t == "array":
            arr = self._array(node.get("ref"))
            if node.get("object"):
                arr = arr.astype(object)
                flat = arr.reshape(-1)
                for n, x in enumerate(flat):
                    flat[n] = str(x)
            return arr[()] if node.get("scalar") else arr
        if t == "objarray":
            items = [self.decode(x) for x in self._items(node)]
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(node.get("shape", [len(items)]))
        if t in ("list", "tuple", "set", "frozenset"):
            items = [self.decode(x) for x in self._items(node)]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[t](items)
        if t == "jsondict":
            v = node.get("v")
            if not isinstance(v, dict):
                raise self.bad("malformed dict")
            return dict(v)
        if t == "dict":
            return {self.decode(k): self.decode(v) for k, v in self._pairs(node)}
        if t == "features":
            from recfeat.data.features import Features

            optional = {"t": "value", "v": None}  # files written before token features
            return Features(self.decode(node.get("ids")), self.decode(node.get("vectors")),
                            self.decode(node.get("manifest")),
                            self.decode(node.get("tokens", optional)),
                            self.decode(node.get("token_columns", optional)))  # fmt: skip
        if t == "model":
            return decode_model(node, self)
        if t == "generator":
            return self._generator(node)
        if t == "frame":
            return self._frame(node)
        if t == "sparse":
            return self._sparse(node)
        if t == "sklearn":
            return self._sklearn(node)
        raise self.bad(f"unknown value type {t!r} (written by a newer recfeat?)")

    def _items(self, node) -> list:
        items = node.get("items")
        if not isinstance(items, list):
            raise self.bad("malformed list")
        return items

    def _pairs(self, node) -> list:
        items = self._items(node)
        if not all(isinstance(p, list) and len(p) == 2 for p in items):
            raise self.bad("malformed dict")
        return items

    def _generator(self, node):
        import numpy as np

        name = node.get("bit_generator")
        if name not in BIT_GENERATORS:
            raise self.bad(f"unknown random generator {name!r}")
        bit = getattr(np.random, name)()
        try:
            bit.state = self.decode(node.get("state"))
        except (TypeError, ValueError, KeyError) as exc:
            raise self.bad(f"bad random generator state ({exc})") from None
        return np.random.Generator(bit)

    def _frame(self, node):
        import pandas as pd

        columns, dtypes, data = node.get("columns"), node.get("dtypes"), node.get("data")
        if not (isinstance(columns, list) and isinstance(dtypes, list) and isinstance(data, list)
                and len(columns) == len(dtypes) == len(data)):  # fmt: skip
            raise self.bad("malformed table")
        frame = pd.DataFrame(
            {c: self.decode(d) for c, d in zip(columns, data, strict=True)},
            index=self.decode(node.get("index")),
        )
        for c, dtype in zip(columns, dtypes, strict=True):
            if dtype != "object" and str(frame[c].dtype) != dtype:
                try:
                    frame[c] = frame[c].astype(dtype)
                except (TypeError, ValueError):
                    raise self.bad(f"table column {c!r}: bad dtype {dtype!r}") from None
        return frame

    def _sparse(self, node):
        import scipy.sparse as sp

        cls = {"csr": sp.csr_matrix, "csc": sp.csc_matrix}.get(node.get("format"))
        if cls is None:
            raise self.bad("unknown sparse format")
        parts = [self.decode(node.get(k)) for k in ("data", "indices", "indptr")]
        try:
            return cls(tuple(parts), shape=tuple(node.get("shape")))
        except (TypeError, ValueError) as exc:
            raise self.bad(f"bad sparse matrix ({exc})") from None

    def _sklearn(self, node):

        import skops.io as sio
        blob = self._array(node.get("ref")).tobytes()
        try:
            untrusted = set(sio.get_untrusted_types(data=blob)) - set(TRUSTED_SKLEARN_TYPES)
            if untrusted:
                raise self.bad(
                    f"it holds types recfeat does not trust ({', '.join(sorted(untrusted))})"
                )
            return sio.loads(blob, trusted=list(TRUSTED_SKLEARN_TYPES))
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged skops blob, any error inside it
            raise self.bad(
                f"its scikit-learn estimator is damaged ({type(exc).__name__}: {exc})"
            ) from None


def decode_model(node: Any, reader: _Reader):
    """Create the model from the registry by name and options, then set its fitted attributes."""
    if not isinstance(node, dict) or not isinstance(node.get("name"), str):
        raise reader.bad("no model name")
    name = node["name"]
    reg = get_registry("model")
    try:
        cls = reg.get(name)
        options = reader.decode(node.get("options", {"t": "jsondict", "v": {}}))
        if not isinstance(options, dict):
            raise reader.bad("model options are not a table")
        model = reg.create(name, **options)
    except DataError:
        raise
    except RecfeatError as exc:
        raise DataError(
            f"model file {reader.path}: cannot create model {name!r} ({exc}); install the plugin "
            "that provides it, or retrain with recfeat train"
        ) from None
    saved_class = node.get("class")
    here = f"{cls.__module__}.{cls.__qualname__}"
    if saved_class != here:
        raise DataError(
            f"model file {reader.path} holds {saved_class}, but model {name!r} is now {here}; "
            "retrain with recfeat train"
        )
    attributes = node.get("attributes")
    if not isinstance(attributes, dict):
        raise reader.bad("no fitted attributes")
    for attr, value in attributes.items():
        # Only fitted-attribute names: never a method, property or option of the class.
        if not (isinstance(attr, str) and attr.isidentifier() and attr.endswith("_")
                and not attr.startswith("_") and not hasattr(cls, attr)):  # fmt: skip
            raise reader.bad(f"{attr!r} is not a fitted-attribute name")
        setattr(model, attr, reader.decode(value))
    return model


def file_kind(path: Path) -> str:
    """'safe' (this format), 'pickle' (an old joblib/pickle file) or 'other'."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(ZIP_MAGIC):
        return "safe"
    if head.startswith(PICKLE_MAGICS):
        return "pickle"
    return "other"


def load_bundle(path: str | Path, *, trust: bool = False) -> dict[str, Any]:
    """Read a model file. Old pickle files are refused (UsageError) unless ``trust``."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p} is a folder, not a model file; give the file recfeat train wrote")
    if not p.is_file():
        raise DataError(f"model file {p} does not exist; create it with recfeat train")
    kind = file_kind(p)
    if kind == "pickle":
        if not trust:
            raise UsageError(
                f"{p} is an old pickle (joblib) model file, and loading one runs any code "
                "hidden in it; retrain with recfeat train (safe format), or pass --trust "
                "(Python: trust=True) only if you made this file yourself"
            )
        return _load_pickle(p)
    if kind != "safe":
        raise DataError(
            f"cannot read model file {p}: it is not a recfeat model file; write one with recfeat train"
        )
    try:
        with zipfile.ZipFile(p) as zf:
            reader = _Reader(zf, p)
            try:
                payload = json.loads(zf.read(BUNDLE_MEMBER).decode("utf-8"))
            except KeyError:
                raise reader.bad(f"no {BUNDLE_MEMBER} inside") from None
            except (UnicodeDecodeError, ValueError) as exc:
                raise reader.bad(f"{BUNDLE_MEMBER} is not valid JSON ({exc})") from None
            if not isinstance(payload, dict) or payload.get("format") != FORMAT:
                raise reader.bad("it is not a recfeat model file")
            if payload.get("version") != VERSION:
                raise reader.bad(
                    f"format version {payload.get('version')!r}; this recfeat reads version {VERSION}"
                )
            header = payload.get("header")
            if not isinstance(header, dict) or not isinstance(header.get("model"), str):
                raise reader.bad("its header has no model name")
            seen, snippets = payload.get("seen", {}), payload.get("snippets", {})
            if not (isinstance(seen, dict) and all(isinstance(v, list) for v in seen.values())):
                raise reader.bad("its seen items are not a table of lists")
            if not (
                isinstance(snippets, dict) and all(isinstance(v, str) for v in snippets.values())
            ):
                raise reader.bad("its snippets are not a table of texts")
            model = decode_model(payload.get("model"), reader)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile) and exc.errno:
            raise
        raise DataError(
            f"cannot read model file {p}: damaged archive ({exc}); write it again"
        ) from None
    return {"format": FORMAT, "header": header, "model": model, "seen": seen, "snippets": snippets}


def _load_pickle(p: Path) -> dict[str, Any]:
    import joblib

    try:
        bundle = joblib.load(p)
    except Exception as exc:  # noqa: BLE001 - any unreadable pickle is the same user error
        raise DataError(
            f"cannot read model file {p}: it is not one recfeat train wrote "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT or "model" not in bundle:
        raise DataError(f"{p} is not a recfeat model file (write one with recfeat train)")
    return bundle
