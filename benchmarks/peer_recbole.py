"""RecBole's SASRec as a peer run on recfeat's sequential (next-item) leave-last-out split.

    /work/recbole-venv/bin/python benchmarks/peer_recbole.py --inter IN.csv --out OUT.json \
        [--epochs N] [--seed S] [--workdir DIR] [--threads T]

IN.csv has columns ``user,item,order`` (user/item are strings; ``order`` is 0..n-1 within each
user, the time order with ties already broken). Our split, per user: the highest order is the
TEST item, the one before it the VALIDATION item, the rest training.

What the script does
--------------------
1. Writes a RecBole atomic file ``<workdir>/recfeat_seq/recfeat_seq.inter`` with columns
   ``user_id:token item_id:token timestamp:float`` and timestamp = order. User/item strings are
   replaced by safe tokens (``u<k>``/``i<k>``, mapped back afterwards), since RecBole reads atomic
   files with pandas, which would turn tokens such as "NA" or "null" into missing values.
   (The dataset is deliberately not named ``ml-100k``: RecBole swaps in its bundled copy then.)
2. Runs SASRec through the same steps as ``recbole.quick_start.run_recbole`` (Config, init_seed,
   init_logger, create_dataset, data_preparation, init_seed, model, Trainer.fit(saved=True),
   Trainer.evaluate(load_best_model=True)), minus its FLOPs count (thop) and environment table
   (psutil). ``recbole.quick_start`` itself is not imported: it imports ``ray`` at module level.
   Configuration: RecBole's SASRec defaults (``recbole/properties/model/SASRec.yaml``: hidden_size
   64, inner_size 256, n_layers 2, n_heads 2, dropout 0.5/0.5, gelu, layer_norm_eps 1e-12,
   initializer_range 0.02, loss_type CE), ``train_neg_sample_args: None`` as the SASRec model page
   asks for CE, RecBole's overall defaults (adam, learning_rate 0.001, train_batch_size 2048,
   eval_batch_size 4096, epochs 300, eval_step 1, stopping_step 10, MAX_ITEM_LIST_LENGTH 50,
   repeatable True from RecBole's sequential quick-start config), eval_args {split: {LS:
   valid_and_test}, order: TO, mode: full, group_by: user}, metrics [NDCG, Recall, MRR], topk [10],
   valid_metric NDCG@10 (RecBole's default is MRR@10), no filtering, cpu. Every explicitly set key
   is in CONFIG below; the full resolved config is written to OUT.json.
3. Checks RecBole's split against ours through its token ids: every test/validation row's
   target item and target order (timestamp) and its input sequence, and the set of training target
   orders per user. Mismatch counts go to ``split_check`` (all should be 0).
4. After loading the best model, recomputes the test metrics from its full-sort scores on
   RecBole's own test batches, with each user's history masked as recfeat's protocol does
   (``test_masked``: every item with order < the test order, the validation item included, and
   the padding item set to -inf; the test item itself is never masked; ties count half), and
   once with only the padding item masked (``test_unmasked_recomputed``), which must reproduce
   RecBole's own rounded ``test`` figures (``recompute_matches_recbole``: within 5e-5).
   ``test_masked`` has ndcg@10, recall@10, mrr (no cut-off), mrr@10 and users, unrounded.
   Scores are computed in chunks of at most 2^23 (users x items) so memory stays modest.
5. Writes OUT.json atomically (temp file + os.replace).

Users with fewer than 3 rows (RecBole's behaviour, read from SequentialDataset.data_augmentation
and Dataset._split_index_by_leave_one_out in 1.2.1): RecBole turns a user's n rows into n-1
(prefix -> next item) examples, and LS valid_and_test leaves out min(2, n-2) of them per user.
So n=1: the user yields no example at all (absent from training and evaluation; the item still
counts in the catalogue). n=2: its one example (target = order 1, our TEST item) is used for
TRAINING and the user is never evaluated. n=3: the example with target order 1 (our VALIDATION
item) is trained on, the user is tested (test item matches ours) but not validated. n>=4: exactly
our split (the order-0 item is only ever input, never a target). The counts are in OUT.json under
``short_users``, and the split check expects exactly this.

Metrics are RecBole's, rounded by RecBole to 4 decimals (metric_decimal_place 4): ``ndcg@10``,
``recall@10`` (= hit rate @10 here: one test item per user) and ``mrr@10`` -- RecBole's MRR is
truncated at k: 1/rank when the target ranks in the top 10, else 0.
Full-sort evaluation of a sequential model does NOT exclude the user's history items: the
sequential branch of FullSortEvalDataLoader.collate_fn returns history_index=None, and
Trainer._full_sort_batch_eval then only sets the padding item 0 to -inf; all real items,
including those in the input sequence and earlier training items, are ranked. The script also
confirms this on the first test batch (``history_index_is_none``). ``test`` is therefore not
comparable with recfeat's history-excluding protocol; ``test_masked`` (step 4) is.

Environment (no RecBole source is patched)
------------------------------------------
A separate venv, never recfeat's:

    python3 -m venv /work/recbole-venv
    /work/recbole-venv/bin/pip install torch==2.13.0          # the local CPU wheel
    /work/recbole-venv/bin/pip install --no-deps recbole==1.2.1
    /work/recbole-venv/bin/pip install torch==2.13.0 numpy==1.23.5 scipy pandas pyyaml \
        scikit-learn tqdm colorlog==4.7.2 colorama==0.4.4 texttable tensorboard

Why: ``--no-deps`` because recbole 1.2.1 declares ray<=2.6.3, thop, psutil, plotly and tabulate,
none of which this code path imports (ray only by recbole.quick_start, thop/psutil only inside
get_flops/get_environment, plotly only in hyper-parameter tuning). numpy==1.23.5 because RecBole's
NDCG and MRR metrics use ``np.float`` (removed in numpy 1.24). tensorboard because
recbole.utils imports torch.utils.tensorboard. The one run-time workaround: torch>=2.6 loads
with weights_only=True by default, and RecBole's Trainer.evaluate(load_best_model=True) loads its
own checkpoint (which pickles RecBole's Config) without passing weights_only, so the script sets
torch's documented ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for its own process; only the
checkpoint this run just wrote is ever loaded.

pip freeze of /work/recbole-venv as tested:
    absl-py==2.5.1, cloudpickle==3.1.3, colorama==0.4.4, colorlog==4.7.2, filelock==4.3.2,
    fsspec==2026.9.0, grpcio==1.85.4, Jinja2==3.1.6, joblib==1.6.0, Markdown==3.11.4,
    MarkupSafe==3.0.4, mpmath==1.3.0, networkx==3.6.1, numpy==1.23.5, packaging==26.4,
    pandas==2.3.3, pillow==13.0.0, protobuf==7.36.2, python-dateutil==4.0.0, pytz==2026.6,
    PyYAML==6.0.4, recbole==1.2.1, scikit-learn==1.7.2, scipy==1.15.3, sympy==1.14.0,
    tensorboard==2.21.0, tensorboard-data-server==0.7.2, texttable==1.7.2, threadpoolctl==3.8.0,
    torch==2.13.0+cpu, tqdm==4.70.1, typing_extensions==4.16.0, tzdata==2026.6, Werkzeug==3.1.9
    (Python 3.11.7)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict

DATASET = "recfeat_seq"
MAX_LEN = 50

# Every key set explicitly (the rest are RecBole's defaults, recorded in OUT.json).
CONFIG = {
    # data: our atomic file, no filtering, no remapping beyond RecBole's token ids
    "field_separator": "\t",
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "user_inter_num_interval": "[0,inf)",
    "item_inter_num_interval": "[0,inf)",
    "val_interval": None,
    "rm_dup_inter": None,
    "MAX_ITEM_LIST_LENGTH": MAX_LEN,
    # SASRec (= recbole/properties/model/SASRec.yaml)
    "hidden_size": 64,
    "inner_size": 256,
    "n_layers": 2,
    "n_heads": 2,
    "hidden_dropout_prob": 0.5,
    "attn_dropout_prob": 0.5,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "loss_type": "CE",
    "train_neg_sample_args": None,
    # training (= RecBole's overall.yaml defaults)
    "learner": "adam",
    "learning_rate": 0.001,
    "train_batch_size": 2048,
    "eval_batch_size": 4096,
    "weight_decay": 0.0,
    "eval_step": 1,
    "stopping_step": 10,
    # evaluation
    "eval_args": {
        "split": {"LS": "valid_and_test"},
        "order": "TO",
        "mode": "full",
        "group_by": "user",
    },
    "repeatable": True,
    "metrics": ["NDCG", "Recall", "MRR"],
    "topk": [10],
    "valid_metric": "NDCG@10",
    # environment
    "reproducibility": True,
    "use_gpu": False,
    "gpu_id": "",
    "worker": 0,
    "show_progress": False,
    "save_dataset": False,
    "save_dataloaders": False,
    "log_wandb": False,
    "state": "INFO",
}

HISTORY_MASKING = (
    "not excluded: for sequential models RecBole's FullSortEvalDataLoader.collate_fn returns "
    "history_index=None, so Trainer._full_sort_batch_eval sets only the padding item 0 to -inf "
    "and ranks every real item, including the items in the user's input sequence / training "
    "history (and, at test time, the validation item); repeatable=True, which RecBole requires "
    "for sequential models"
)


def fail(msg: str) -> None:
    print(f"peer_recbole: error: {msg}", file=sys.stderr)
    sys.exit(1)


def read_inter(path: str) -> dict[str, list[str]]:
    """user -> items in order; exits 1 with one line on bad input."""
    if not os.path.isfile(path):
        fail(f"input file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            missing = [c for c in ("user", "item", "order") if c not in cols]
            if missing:
                fail(
                    f"{path}: missing column(s) {', '.join(missing)} (have: {', '.join(cols) or 'none'})"
                )
            rows: dict[str, dict[int, str]] = defaultdict(dict)
            for line, r in enumerate(reader, start=2):
                u, i, o = r["user"], r["item"], r["order"]
                if u is None or i is None or o is None or u == "" or i == "":
                    fail(f"{path}:{line}: empty user/item/order")
                try:
                    k = int(o)
                except ValueError:
                    fail(f"{path}:{line}: order {o!r} is not an integer")
                if k in rows[u]:
                    fail(f"{path}:{line}: user {u!r} has order {k} twice")
                rows[u][k] = i
    except UnicodeDecodeError as e:
        fail(f"{path}: not UTF-8 text ({e.reason})")
    except csv.Error as e:
        fail(f"{path}: unreadable CSV ({e})")
    if not rows:
        fail(f"{path}: no rows")
    seqs = {}
    for u, d in rows.items():
        n = len(d)
        if min(d) != 0 or max(d) != n - 1:
            fail(f"{path}: user {u!r}: orders are not 0..{n - 1}")
        seqs[u] = [d[k] for k in range(n)]
    return seqs


def write_atomic_file(seqs, data_dir):
    """RecBole .inter with safe tokens; returns token->original maps."""
    os.makedirs(data_dir, exist_ok=True)
    utok, itok = {}, {}
    with open(os.path.join(data_dir, f"{DATASET}.inter"), "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, items in seqs.items():
            ut = utok.setdefault(u, f"u{len(utok)}")
            for k, i in enumerate(items):
                it = itok.setdefault(i, f"i{len(itok)}")
                f.write(f"{ut}\t{it}\t{k}\n")
    return {t: u for u, t in utok.items()}, {t: i for i, t in itok.items()}


def split_check(ds_train, ds_valid, ds_test, seqs, tok2user, tok2item):
    """Compare RecBole's built datasets with our split, through its token ids."""
    import numpy as np

    def rows(ds):
        inter = ds.inter_feat
        users = ds.id2token("user_id", inter["user_id"].numpy())
        items = ds.id2token("item_id", inter["item_id"].numpy())
        ts = inter["timestamp"].numpy().astype(np.int64)
        lists = inter["item_id_list"].numpy()
        lens = inter["item_length"].numpy()
        for k in range(len(inter)):
            hist = ds.id2token("item_id", lists[k, : lens[k]]) if lens[k] else []
            yield (tok2user[users[k]], tok2item[items[k]], int(ts[k]), [tok2item[t] for t in hist])

    out = {
        "test_item_mismatches": 0,
        "test_order_mismatches": 0,
        "test_input_mismatches": 0,
        "valid_item_mismatches": 0,
        "valid_order_mismatches": 0,
        "valid_input_mismatches": 0,
        "duplicate_eval_users": 0,
    }
    for name, ds, offset in (("test", ds_test, 1), ("valid", ds_valid, 2)):
        seen = set()
        for u, item, order, hist in rows(ds):
            if u in seen:
                out["duplicate_eval_users"] += 1
            seen.add(u)
            n = len(seqs[u])
            target = n - offset
            out[f"{name}_item_mismatches"] += item != seqs[u][target]
            out[f"{name}_order_mismatches"] += order != target
            out[f"{name}_input_mismatches"] += hist != seqs[u][max(0, target - MAX_LEN) : target]
        # RecBole evaluates a user on test iff n >= 3, on validation iff n >= 4 (see docstring)
        expect = {u for u, s in seqs.items() if len(s) >= (3 if name == "test" else 4)}
        out[f"{name}_users"] = len(seen)
        out[f"{name}_users_expected"] = len(expect)
        out[f"{name}_users_missing"] = len(expect - seen)
        out[f"{name}_users_unexpected"] = len(seen - expect)

    got = defaultdict(list)
    for u, _item, order, _hist in rows(ds_train):
        got[u].append(order)
    mism = 0
    for u, s in seqs.items():
        n = len(s)
        expect = list(range(1, n - 2)) if n >= 4 else ([1] if n in (2, 3) else [])
        mism += sorted(got.get(u, [])) != expect
    out["train_target_users_mismatched"] = mism
    out["train_rows"] = sum(len(v) for v in got.values())
    out["ours_vs_recbole_equal"] = all(
        v == 0
        for k, v in out.items()
        if k.endswith(("mismatches", "_missing", "_unexpected", "_mismatched"))
        or k == "duplicate_eval_users"
    )
    # informational: how often the test item already occurs in the user's earlier items
    out["test_item_in_user_history"] = sum(
        1 for s in seqs.values() if len(s) >= 3 and s[-1] in s[:-1]
    )
    return out


MASKED_NOTE = (
    "recomputed by this script from the best model's full-sort scores on RecBole's own test "
    "batches (same input sequences): per test user, the scores of every item in the user's "
    "history (all items with order < the test order, the validation item included, mapped to "
    "RecBole's token ids) and of the padding item 0 are set to -inf; the test item itself is "
    "never masked (users whose test item also occurs in their history: "
    "test_masked.target_in_history). rank = 1 + #unmasked items scoring strictly higher + "
    "0.5 * #other unmasked items with exactly the target's score (ties counted half; "
    "test_masked.tied_targets counts users with any tie). ndcg@10 = 1/log2(rank+1) if rank <= 10 "
    "else 0; recall@10 = [rank <= 10]; mrr = 1/rank (no cut-off); mrr@10 = 1/rank if rank <= 10 "
    "else 0; means over test users, unrounded"
)


def masked_test_metrics(model, test_data, seqs, tok2user, tok2item, device, max_cells=1 << 23):
    """Test metrics from the loaded model's full-sort scores, once with the user's history masked
    (recfeat's protocol) and once with only the padding item masked (must reproduce RecBole).

    Iterates RecBole's test dataloader (so the input sequences are exactly RecBole's test
    inputs) and scores each of its batches in chunks of at most ``max_cells`` scores."""
    import numpy as np
    import torch

    ds = test_data._dataset
    uid_field, iid_field = ds.uid_field, ds.iid_field
    tok2rid = ds.field2token_id[iid_field]
    item2rid = {orig: int(tok2rid[tok]) for tok, orig in tok2item.items()}
    n_items = ds.item_num  # RecBole's count, [PAD] id 0 included
    chunk = max(1, max_cells // n_items)

    names = ("ndcg@10", "recall@10", "mrr", "mrr@10")
    sums = {m: {k: 0.0 for k in names} for m in ("masked", "unmasked")}
    users = 0
    target_mismatch = 0
    target_in_history = 0
    tied = {"masked": 0, "unmasked": 0}
    masked_items = 0

    def add(which, scores, targets):
        t = scores.gather(1, targets.view(-1, 1))
        greater = (scores > t).sum(1).double()
        ties = ((scores == t).sum(1) - 1).double()
        rank = 1.0 + greater + 0.5 * ties
        tied[which] += int((ties > 0).sum())
        top = rank <= 10
        s = sums[which]
        s["ndcg@10"] += float(torch.where(top, 1.0 / torch.log2(rank + 1.0), 0.0).sum())
        s["recall@10"] += float(top.double().sum())
        s["mrr"] += float((1.0 / rank).sum())
        s["mrr@10"] += float(torch.where(top, 1.0 / rank, 0.0).sum())

    model.eval()
    with torch.no_grad():
        for interaction, _history_index, _positive_u, positive_i in test_data:
            n = len(interaction)
            user_toks = ds.id2token(uid_field, interaction[uid_field].numpy())
            for a in range(0, n, chunk):
                b = min(n, a + chunk)
                part = interaction[np.arange(a, b)].to(device)
                scores = model.full_sort_predict(part).view(-1, n_items).double()
                targets = positive_i[a:b].to(device).long()
                scores[:, 0] = -np.inf
                add("unmasked", scores, targets)
                rows, cols = [], []
                for r in range(b - a):
                    seq = seqs[tok2user[user_toks[a + r]]]
                    target = int(targets[r])
                    target_mismatch += item2rid[seq[-1]] != target
                    hist = {item2rid[i] for i in seq[:-1]}  # orders < test order (= n-1)
                    if target in hist:
                        target_in_history += 1
                        hist.discard(target)
                    rows.extend([r] * len(hist))
                    cols.extend(hist)
                masked_items += len(cols)
                if cols:
                    scores[torch.tensor(rows), torch.tensor(cols)] = -np.inf
                add("masked", scores, targets)
                users += b - a

    def means(which):
        out = {k: (v / users if users else None) for k, v in sums[which].items()}
        out["users"] = users
        out["tied_targets"] = tied[which]
        return out

    masked = means("masked")
    masked["target_in_history"] = target_in_history
    masked["masked_history_items"] = masked_items
    masked["target_mismatches"] = target_mismatch
    return masked, means("unmasked")


def recompute_matches(recomputed, recbole_test):
    """Our unmasked recompute vs RecBole's own rounded test metrics (half a unit in the 4th
    decimal, plus float slack)."""
    if recomputed["users"] == 0 or not recbole_test:
        return False
    keys = ("ndcg@10", "recall@10", "mrr@10")
    return all(abs(recomputed[k] - recbole_test[k]) <= 5e-5 + 1e-9 for k in keys)


def jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inter", required=True, help="CSV with columns user,item,order")
    ap.add_argument("--out", required=True, help="JSON result path")
    ap.add_argument(
        "--epochs",
        type=int,
        default=300,
        help="max epochs (early stopping 10); RecBole's default 300",
    )
    ap.add_argument("--seed", type=int, default=2020, help="RecBole's default seed is 2020")
    ap.add_argument(
        "--workdir",
        default=None,
        help="keep atomic files, logs and checkpoint here (default: temp, removed)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args()
    if args.epochs < 1:
        fail("--epochs must be >= 1")
    inter_path = os.path.abspath(args.inter)
    out_path = os.path.abspath(args.out)
    if not os.path.isdir(os.path.dirname(out_path)):
        fail(f"output directory does not exist: {os.path.dirname(out_path)}")
    seqs = read_inter(inter_path)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))
    # torch>=2.6 defaults torch.load to weights_only=True; RecBole's own checkpoint (written by
    # this run) pickles its Config, and Trainer.evaluate does not pass weights_only.
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"

    temp = args.workdir is None
    workdir = tempfile.mkdtemp(prefix="peer_recbole_") if temp else os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    # fresh files of our own each run, so RecBole never picks up a stale saved dataset/dataloader
    for sub in (DATASET, "saved"):
        shutil.rmtree(os.path.join(workdir, sub), ignore_errors=True)
    tok2user, tok2item = write_atomic_file(seqs, os.path.join(workdir, DATASET))
    cwd = os.getcwd()
    os.chdir(workdir)  # RecBole writes ./log and ./log_tensorboard relative to the cwd
    try:
        result = run(args, seqs, tok2user, tok2item, workdir)
    finally:
        os.chdir(cwd)
        if temp:
            shutil.rmtree(workdir, ignore_errors=True)
    result["workdir"] = None if temp else workdir
    tmp = f"{out_path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, out_path)
    t, m = result["test"], result["test_masked"]
    print(
        f"peer_recbole: SASRec test ndcg@10={t['ndcg@10']} recall@10={t['recall@10']} "
        f"mrr@10={t['mrr@10']} | history-masked ndcg@10={m['ndcg@10']:.4f} "
        f"recall@10={m['recall@10']:.4f} mrr={m['mrr']:.4f} | epochs={result['epochs_run']} "
        f"train_s={result['train_seconds']:.1f} "
        f"split_ok={result['split_check']['ours_vs_recbole_equal']} "
        f"recompute_ok={result['recompute_matches_recbole']} -> {out_path}"
    )


def run(args, seqs, tok2user, tok2item, workdir):
    import logging
    import platform
    import warnings

    # RecBole 1.2.1 on pandas 2.3 / torch 2.13: chained-assignment and GradScaler deprecation
    # notices, and torch's note that the env var below forced weights_only=False
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")
    warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    cfg = dict(
        CONFIG,
        data_path=workdir,
        checkpoint_dir=os.path.join(workdir, "saved"),
        epochs=args.epochs,
        seed=args.seed,
    )
    t_all = time.perf_counter()
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config also parses --key=value argv
    try:
        config = Config(model="SASRec", dataset=DATASET, config_dict=cfg)
    finally:
        sys.argv = argv
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = logging.getLogger()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    check = split_check(
        train_data._dataset, valid_data._dataset, test_data._dataset, seqs, tok2user, tok2item
    )
    history_none = next(iter(test_data))[1] is None if len(test_data._dataset) else None

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    valid_curve = []

    def on_epoch(epoch_idx, valid_score):
        valid_curve.append([epoch_idx, float(valid_score)])

    t0 = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=True, show_progress=False, callback_fn=on_epoch
    )
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    test_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_masked, test_unmasked = masked_test_metrics(
        trainer.model, test_data, seqs, tok2user, tok2item, config["device"]
    )
    masked_s = time.perf_counter() - t0
    trainer.tensorboard.close()
    logger.info(f"test result: {dict(test_result)}")
    for h in list(logger.handlers):  # release RecBole's log file before the workdir goes
        h.close()
        logger.removeHandler(h)

    best_epoch = None
    best = -np.inf
    for e, s in valid_curve:  # RecBole's early_stopping keeps the latest of equal scores (>=)
        if s >= best:
            best, best_epoch = s, e
    lens = [len(s) for s in seqs.values()]
    short = {
        "n1_users": sum(n == 1 for n in lens),
        "n2_users": sum(n == 2 for n in lens),
        "n3_users": sum(n == 3 for n in lens),
        "what_recbole_does": (
            "n=1: no example at all (not trained on, not evaluated); n=2: its one example "
            "(target = our test item) is a TRAINING example, user never evaluated; n=3: target "
            "order 1 (our validation item) is trained on, user tested (same test item) but not "
            "validated; n>=4: identical to our split"
        ),
    }
    return {
        "model": "RecBole SASRec",
        "input": os.path.abspath(args.inter),
        "test": {k: float(v) for k, v in test_result.items()},
        "test_masked": test_masked,
        "test_masked_note": MASKED_NOTE,
        "test_unmasked_recomputed": test_unmasked,
        "recompute_matches_recbole": recompute_matches(
            test_unmasked, {k: float(v) for k, v in test_result.items()}
        ),
        "best_valid": {k: float(v) for k, v in (best_valid_result or {}).items()},
        "best_valid_score": float(best_valid_score),
        "valid_metric": config["valid_metric"],
        "metric_notes": (
            "RecBole's values, rounded by RecBole to metric_decimal_place=4; mrr@10 is MRR "
            "truncated at 10 (0 when the target is outside the top 10); recall@10 equals hit@10 "
            "(one target per user); full-sort ranking over all items"
        ),
        "history_masking": HISTORY_MASKING,
        "history_index_is_none": history_none,
        "epochs_run": len(trainer.train_loss_dict),
        "epochs_max": args.epochs,
        "best_epoch": best_epoch,
        "early_stopped": len(trainer.train_loss_dict) < args.epochs,
        "valid_curve": valid_curve,
        "train_seconds": round(train_s, 2),
        "test_seconds": round(test_s, 2),
        "test_masked_seconds": round(masked_s, 2),
        "total_seconds": round(time.perf_counter() - t_all, 2),
        "threads": args.threads,
        "seed": args.seed,
        "n_users": len(seqs),
        "n_items": len(tok2item),
        "n_interactions": sum(lens),
        "recbole_user_num": dataset.user_num - 1,  # RecBole counts its [PAD] id 0
        "recbole_item_num": dataset.item_num - 1,
        "short_users": short,
        "split_check": check,
        "versions": {
            "recbole": recbole.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "config_set": jsonable(cfg),
        "config": jsonable(dict(config.final_config_dict)),
    }


if __name__ == "__main__":
    main()
