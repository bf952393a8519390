"""The Python API checks its arguments itself (issue: hardening, items 5 and 7): a wrong type,
a number out of range or not finite, an empty list, a DataFrame where a path goes or a dict
where a bundle goes is refused by the function a script calls, with one RecfeatError line
naming the argument, never an AttributeError, TypeError or KeyError from deep inside. The
command line calls the same functions and only formats what they raise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

import recfeat
from recfeat.errors import DataError, OptionError, RecfeatError, UsageError

NAN, INF = float("nan"), float("inf")
FAST = "global-mean,popularity"


def ratings_frame() -> pd.DataFrame:
    """30 users x 20 items, ratings 1-5, seeded; users '1', '9', '6' and '196' among them, so
    ranking '196' as its digits would show."""
    rng = np.random.default_rng(0)
    users = [str(u) for u in range(1, 31)] + ["196"]
    rows = [(u, f"i{i}", float(rng.integers(1, 6)), 1_600_000_000 + n)
            for n, (u, i) in enumerate((u, i) for u in users for i in rng.choice(20, 8, replace=False))]  # fmt: skip
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-checks")
    frame = ratings_frame()
    csv = root / "ratings.csv"
    frame.to_csv(csv, index=False)
    data = recfeat.load_dataset(frame)
    bundle = recfeat.train(data, "popularity")
    model_path = recfeat.save_model(bundle, root / "model.recfeat")
    (root / "a_file.txt").write_text("not a folder\n")
    return {"root": root, "frame": frame, "csv": csv, "data": data, "bundle": bundle,
            "model_path": model_path}  # fmt: skip


# (id, call, error class, fragment of the message naming the argument)
CASES = [
    # load_dataset
    ("load_dataset_int", lambda c: recfeat.load_dataset(42), UsageError, "path"),
    ("load_dataset_frame_without_columns", lambda c: recfeat.load_dataset(pd.DataFrame({"x": [1]})), UsageError, "column"),
    ("load_dataset_frame_other_format", lambda c: recfeat.load_dataset(c["frame"], format="amazon"), UsageError, "format"),
    ("load_dataset_frame_encoding", lambda c: recfeat.load_dataset(c["frame"], encoding="latin-1"), UsageError, "encoding"),
    ("load_dataset_format_int", lambda c: recfeat.load_dataset(None, format=3), UsageError, "format"),
    ("load_dataset_empty_frame", lambda c: recfeat.load_dataset(c["frame"].iloc[:0]), UsageError, "no rows"),
    # encoder, model
    ("encoder_int", lambda c: recfeat.encoder(5), UsageError, "encoder"),
    ("encoder_backend_int", lambda c: recfeat.encoder("minilm", backend=3), UsageError, "backend"),
    ("model_none", lambda c: recfeat.model(None), UsageError, "model"),
    ("model_option_nan", lambda c: recfeat.model("bias", reg_user=NAN), OptionError, "reg_user"),
    # extract
    ("extract_none", lambda c: recfeat.extract(None), UsageError, "data"),
    ("extract_int", lambda c: recfeat.extract(42), UsageError, "data"),
    ("extract_frame_without_columns", lambda c: recfeat.extract(pd.DataFrame({"x": [1]})), UsageError, "column"),
    ("extract_level_int", lambda c: recfeat.extract(c["data"], level=3), UsageError, "level"),
    ("extract_encoder_int", lambda c: recfeat.extract(c["data"], encoder=5), UsageError, "encoder"),
    ("extract_chunk_size_zero", lambda c: recfeat.extract(c["data"], chunk_size=0), UsageError, "chunk_size"),
    ("extract_cache_true", lambda c: recfeat.extract(c["data"], cache=True), UsageError, "cache"),
    ("extract_unknown_option", lambda c: recfeat.extract(c["data"], batch=3), UsageError, "batch"),
    # extract_settings, extract_file
    ("extract_settings_max_length_1", lambda c: recfeat.extract_settings(data="sample", max_length=1), UsageError, "--max-length"),
    ("extract_settings_chunk_size_str", lambda c: recfeat.extract_settings(data="sample", chunk_size="x"), UsageError, "--chunk-size"),
    ("extract_settings_min_cosine_nan", lambda c: recfeat.extract_settings(data="sample", min_cosine=NAN), UsageError, "--min-cosine"),
    ("extract_settings_gate_5", lambda c: recfeat.extract_settings(data="sample", gate_interactions=5), UsageError, "--gate-interactions"),
    ("extract_settings_ray_no_cpus", lambda c: recfeat.extract_settings(data="sample", ray={"cpus_per_actor": 0}), UsageError, "--cpus-per-actor"),
    ("extract_settings_ray_gpus_nan", lambda c: recfeat.extract_settings(data="sample", ray={"gpus_per_actor": NAN}), UsageError, "--gpus-per-actor"),
    ("extract_settings_loader_options_int", lambda c: recfeat.extract_settings(data="sample", loader_options=5), UsageError, "loader_options"),
    ("extract_settings_stream_str", lambda c: recfeat.extract_settings(data="sample", stream="yes"), UsageError, "--stream"),
    ("extract_file_frame", lambda c: recfeat.extract_file(c["frame"], c["root"] / "o.parquet"), UsageError, "DATA"),
    ("extract_file_out_int", lambda c: recfeat.extract_file("sample", 5), UsageError, "out"),
    ("extract_file_none", lambda c: recfeat.extract_file(None, c["root"] / "o.parquet"), UsageError, "DATA"),
    ("extract_file_settings_dict", lambda c: recfeat.extract_file(out="o.parquet", settings={}), UsageError, "settings"),
    # make_split
    ("make_split_none", lambda c: recfeat.make_split(None), UsageError, "interactions"),
    ("make_split_kind_int", lambda c: recfeat.make_split(c["data"], 3), UsageError, "split"),
    ("make_split_seed_negative", lambda c: recfeat.make_split(c["data"], seed=-1), UsageError, "seed"),
    ("make_split_fraction_nan", lambda c: recfeat.make_split(c["data"], test_fraction=NAN), UsageError, "test_fraction"),
    ("make_split_leave_last_str", lambda c: recfeat.make_split(c["data"], "temporal", leave_last="yes"), UsageError, "leave_last"),
    ("make_split_unknown_option", lambda c: recfeat.make_split(c["data"], fraction=0.2), UsageError, "fraction"),
    # evaluate_settings
    ("evaluate_settings_k_str", lambda c: recfeat.evaluate_settings(data=c["data"], k="10"), UsageError, "--k"),
    ("evaluate_settings_models_int", lambda c: recfeat.evaluate_settings(data=c["data"], models=5), UsageError, "models"),
    ("evaluate_settings_metrics_empty", lambda c: recfeat.evaluate_settings(data=c["data"], metrics=[]), UsageError, "--metrics"),
    ("evaluate_settings_split_typo", lambda c: recfeat.evaluate_settings(data=c["data"], split="randm"), UsageError, "--split"),
    ("evaluate_settings_model_options_int", lambda c: recfeat.evaluate_settings(data=c["data"], models="bias", model_options={"bias": 5}), UsageError, "model_options"),
    ("evaluate_settings_tune_str", lambda c: recfeat.evaluate_settings(data=c["data"], tune="yes"), UsageError, "--tune"),
    ("evaluate_settings_data_int", lambda c: recfeat.evaluate_settings(data=5), UsageError, "DATA"),
    # evaluate
    ("evaluate_frame_without_columns", lambda c: recfeat.evaluate(pd.DataFrame({"a": [1]})), UsageError, "column"),
    ("evaluate_k_str", lambda c: recfeat.evaluate(c["data"], models=FAST, k="10"), UsageError, "--k"),
    ("evaluate_k_bool", lambda c: recfeat.evaluate(c["data"], models=FAST, k=True), UsageError, "--k"),
    ("evaluate_seed_negative", lambda c: recfeat.evaluate(c["data"], models=FAST, seed=-1), UsageError, "--seed"),
    ("evaluate_fraction_over_1", lambda c: recfeat.evaluate(c["data"], models=FAST, test_fraction=1.5), UsageError, "--test-fraction"),
    ("evaluate_features_int", lambda c: recfeat.evaluate(c["data"], 5, models=FAST), UsageError, "--features"),
    ("evaluate_split_int", lambda c: recfeat.evaluate(c["data"], models=FAST, split=3), UsageError, "split"),
    ("evaluate_out_int", lambda c: recfeat.evaluate(c["data"], models=FAST, out=5), UsageError, "out"),
    ("evaluate_settings_dict", lambda c: recfeat.evaluate(settings={}), UsageError, "settings"),
    ("evaluate_cold_reviews_zero", lambda c: recfeat.evaluate(c["data"], models=FAST, cold_reviews=0), UsageError, "--cold-reviews"),
    ("evaluate_models_list_of_int", lambda c: recfeat.evaluate(c["data"], models=[1, 2]), UsageError, "models"),
    ("evaluate_none", lambda c: recfeat.evaluate(None, models=FAST), UsageError, "data"),
    # read_features
    ("read_features_none", lambda c: recfeat.read_features(None), UsageError, "path"),
    ("read_features_frame", lambda c: recfeat.read_features(c["frame"]), UsageError, "path"),
    ("read_features_missing", lambda c: recfeat.read_features(c["root"] / "none.parquet"), DataError, "does not exist"),
    # train_settings, train
    ("train_no_model", lambda c: recfeat.train(c["frame"]), UsageError, "model"),
    ("train_options_str", lambda c: recfeat.train(c["data"], "bias", options="x"), UsageError, "options"),
    ("train_options_int", lambda c: recfeat.train(c["data"], "bias", options=5), UsageError, "options"),
    ("train_model_int", lambda c: recfeat.train(c["data"], 3), UsageError, "model"),
    ("train_features_int", lambda c: recfeat.train(c["data"], "popularity", item_features=5), UsageError, "--features"),
    ("train_data_int", lambda c: recfeat.train(5, "bias"), UsageError, "data"),
    ("train_out_int", lambda c: recfeat.train(c["data"], "bias", out=5), UsageError, "out"),
    ("train_settings_dict", lambda c: recfeat.train(settings={"model": "bias"}), UsageError, "settings"),
    ("train_settings_option_without_value", lambda c: recfeat.train_settings(data=c["data"], model="bias", options=["reg_user"]), UsageError, "options"),
    ("train_settings_features_frame", lambda c: recfeat.train_settings(data=c["data"], model="bias", item_features=c["frame"]), UsageError, "--features"),
    # save_model, load_model
    ("save_model_empty_dict", lambda c: recfeat.save_model({}, c["root"] / "m.recfeat"), UsageError, "bundle"),
    ("save_model_none", lambda c: recfeat.save_model(None, c["root"] / "m.recfeat"), UsageError, "bundle"),
    ("save_model_header_only", lambda c: recfeat.save_model({"header": {}}, c["root"] / "m.recfeat"), UsageError, "bundle"),
    ("save_model_into_folder", lambda c: recfeat.save_model(c["bundle"], c["root"]), UsageError, "folder"),
    ("save_model_path_none", lambda c: recfeat.save_model(c["bundle"], None), UsageError, "path"),
    ("load_model_none", lambda c: recfeat.load_model(None), UsageError, "path"),
    ("load_model_folder", lambda c: recfeat.load_model(c["root"]), DataError, "folder"),
    ("load_model_trust_str", lambda c: recfeat.load_model(c["model_path"], trust="yes"), UsageError, "trust"),
    # recommend_settings, recommend
    ("recommend_empty_dict", lambda c: recfeat.recommend({}, ["1"]), UsageError, "bundle"),
    ("recommend_bundle_none", lambda c: recfeat.recommend(None, ["1"]), UsageError, "bundle"),
    ("recommend_k_str", lambda c: recfeat.recommend(c["bundle"], ["1"], k="3"), UsageError, "--k"),
    ("recommend_k_zero", lambda c: recfeat.recommend(c["bundle"], ["1"], k=0), UsageError, "--k"),
    ("recommend_k_float", lambda c: recfeat.recommend(c["bundle"], ["1"], k=2.5), UsageError, "--k"),
    ("recommend_user_none", lambda c: recfeat.recommend(c["bundle"], [None]), UsageError, "user"),
    ("recommend_users_empty", lambda c: recfeat.recommend(c["bundle"], []), UsageError, "--users"),
    ("recommend_users_dict", lambda c: recfeat.recommend_settings(users={"1": 1}), UsageError, "users"),
    ("recommend_include_seen_str", lambda c: recfeat.recommend(c["bundle"], ["1"], include_seen="no"), UsageError, "--include-seen"),
    # explain, explain_eval
    ("explain_model_none", lambda c: recfeat.explain(None, "1"), UsageError, "model"),
    ("explain_popularity", lambda c: recfeat.explain(c["bundle"], "1"), UsageError, "explains nothing"),
    ("explain_two_users", lambda c: recfeat.explain(c["bundle"], ["1", "2"]), UsageError, "one user"),
    ("explain_k_zero", lambda c: recfeat.explain(c["bundle"], "1", k=0), UsageError, "k"),
    ("explain_eval_no_data", lambda c: recfeat.explain_eval(None), UsageError, "data"),
    ("explain_eval_users_one", lambda c: recfeat.explain_eval(c["data"], "ease", users=1), UsageError, "--users"),
    ("explain_eval_cite_zero", lambda c: recfeat.explain_eval(c["data"], "ease", cite=[0]), UsageError, "--cite"),
    ("explain_eval_unknown_model", lambda c: recfeat.explain_eval(c["data"], "nope"), RecfeatError, "nope"),
    ("recommend_features_int", lambda c: recfeat.recommend(c["bundle"], ["1"], features=5), UsageError, "--features"),
    # demo
    ("run_demo_data_int", lambda c: recfeat.run_demo(data=5), UsageError, "data"),
    ("run_demo_settings_dict", lambda c: recfeat.run_demo(settings={}), UsageError, "settings"),
    ("demo_settings_cache_true", lambda c: recfeat.demo_settings(cache=True), UsageError, "cache"),
    # export, verify_export
    ("export_settings_max_length_str", lambda c: recfeat.export_settings(max_length="x"), UsageError, "--max-length"),
    ("export_settings_min_cosine_nan", lambda c: recfeat.export_settings(min_cosine=NAN), UsageError, "--min-cosine"),
    ("export_settings_opset_3", lambda c: recfeat.export_settings(opset=3), UsageError, "--opset"),
    ("export_out_none", lambda c: recfeat.export("minilm", None), UsageError, "out"),
    ("export_force_str", lambda c: recfeat.export("minilm", c["root"] / "exp", force="yes"), UsageError, "force"),
    ("verify_export_none", lambda c: recfeat.verify_export(None), UsageError, "path"),
    # bench, choose_backend
    ("bench_report_out_none", lambda c: recfeat.bench_throughput_report(None), UsageError, "out"),
    ("bench_report_threads_zero", lambda c: recfeat.bench_throughput_report(c["root"] / "b", threads=0), UsageError, "--threads"),
    ("bench_report_repeats_nan", lambda c: recfeat.bench_throughput_report(c["root"] / "b", repeats=NAN), UsageError, "--repeats"),
    ("bench_accuracy_min_cosine_nan", lambda c: recfeat.bench_accuracy_report(c["csv"], c["root"] / "b", min_cosine=NAN), UsageError, "--min-cosine"),
    ("bench_accuracy_data_int", lambda c: recfeat.bench_accuracy_report(5, c["root"] / "b"), UsageError, "data"),
    ("bench_throughput_backends_int", lambda c: recfeat.bench_throughput("minilm", 5), UsageError, "backends"),
    ("bench_throughput_texts_str", lambda c: recfeat.bench_throughput("minilm", texts="one text"), UsageError, "texts"),
    ("choose_backend_texts_str", lambda c: recfeat.choose_backend("minilm", "one text"), UsageError, "texts"),
    ("choose_backend_texts_none", lambda c: recfeat.choose_backend("minilm", None), UsageError, "texts"),
    ("choose_backend_min_cosine_inf", lambda c: recfeat.choose_backend("minilm", ["a"], min_cosine=INF), UsageError, "min_cosine"),
    # texts: cleaners, tokenizers, formats
    ("cleaner_chain_int", lambda c: recfeat.cleaner_chain(5), UsageError, "cleaners"),
    ("tokenizer_name_int", lambda c: recfeat.tokenizer(3), UsageError, "name"),
    ("tokenizer_max_length_1", lambda c: recfeat.tokenizer(max_length=1), UsageError, "--max-length"),
    ("tokenizer_options_int", lambda c: recfeat.tokenizer(options=5), UsageError, "options"),
    ("detect_format_none", lambda c: recfeat.detect_format(None), UsageError, "path"),
    ("detect_format_stream_str", lambda c: recfeat.detect_format("a.csv", stream="yes"), UsageError, "stream"),
    # datasets, sample, listings, config
    ("dataset_info_float", lambda c: recfeat.dataset_info(3.5), UsageError, "path"),
    ("dataset_info_options_int", lambda c: recfeat.dataset_info(None, options=5), UsageError, "options"),
    ("write_sample_none", lambda c: recfeat.write_sample(None), UsageError, "out_dir"),
    ("write_sample_seed_negative", lambda c: recfeat.write_sample(c["root"] / "s", seed=-1), UsageError, "--seed"),
    ("write_sample_into_a_file", lambda c: recfeat.write_sample(c["root"] / "a_file.txt"), UsageError, "file"),
    ("distill_no_out", lambda c: recfeat.distill(c["data"]), UsageError, "out"),
    ("distill_layers", lambda c: recfeat.distill(c["data"], out=c["root"] / "s", layers=0), UsageError, "--layers"),
    ("distill_unknown", lambda c: recfeat.distill(c["data"], out=c["root"] / "s", layer=2), UsageError, "layer"),
    ("adapt_frame", lambda c: recfeat.adapt(pd.DataFrame(), "x", "whiten", out=c["root"] / "o.parquet"), UsageError, "FEATURES"),
    ("adapt_kind_int", lambda c: recfeat.adapt(c["root"] / "f.parquet", "x", 5, out=c["root"] / "o.parquet"), UsageError, "kind"),
    ("list_plugins_str", lambda c: recfeat.list_plugins("x"), UsageError, "include_builtin"),
    ("list_components_int", lambda c: recfeat.list_components(3), UsageError, "kind"),
    ("validate_config_int", lambda c: recfeat.validate_config(5), UsageError, "config"),
    ("validate_config_none", lambda c: recfeat.validate_config(None), UsageError, "config"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_api_call_is_one_recfeat_error_naming_the_argument(ctx, call, error, fragment):
    # pytest.raises(RecfeatError) lets any other exception through: the test then fails on it
    with pytest.raises(RecfeatError) as info:
        call(ctx)
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert fragment in message, message
    assert "\n" not in message, message


def test_the_table_covers_every_function_of_the_api():
    exempt = {"serve", "serve_settings", "finetune",  # other parts of the issue
              "bench_backends"}  # takes no argument
    names = {name for name in recfeat.__all__ if callable(getattr(recfeat, name))
             and getattr(recfeat, name).__module__ == "recfeat.api"}  # fmt: skip
    called = {name for _, call, _, _ in CASES for name in call.__code__.co_names}
    assert len(CASES) >= 40
    assert sorted(names - exempt - called) == []


def test_one_user_id_as_a_string_or_an_int_is_one_user(ctx):
    bundle = ctx["bundle"]
    for users in ("196", 196, np.int64(196), ["196"]):
        rankings = recfeat.recommend(bundle, users, k=3)
        assert [r.user for r in rankings] == ["196"], users
        assert rankings[0].known_user and len(rankings[0].items) == 3
        seen = set(bundle.seen["196"])
        assert not seen & set(rankings[0].items)  # 196's own history, not 1's, 9's or 6's
    # from a saved model too, and through the settings object
    loaded = recfeat.load_model(ctx["model_path"])
    settings = recfeat.recommend_settings(users="196", k=2)
    assert settings.users == ["196"]
    assert [r.user for r in recfeat.recommend(loaded, settings=settings)] == ["196"]
    # the documented list spelling of the command line still names several
    assert [r.user for r in recfeat.recommend(bundle, "1,9", k=1)] == ["1", "9"]


@pytest.mark.parametrize("threshold", [NAN, INF, -INF, -1, -0.5])
def test_a_non_finite_or_negative_relevance_threshold_is_refused(ctx, threshold):
    with pytest.raises(UsageError, match="--relevance-threshold must be a finite number >= 0"):
        recfeat.evaluate_settings(data=ctx["data"], models=FAST, relevance_threshold=threshold)
    with pytest.raises(UsageError, match="--relevance-threshold"):
        recfeat.evaluate(ctx["data"], models=FAST, relevance_threshold=threshold)
    if not math.isnan(threshold):  # the same rule for a config file's value
        config = {"pipeline": {"relevance_threshold": float(threshold)}}
        with pytest.raises(RecfeatError, match="relevance"):
            recfeat.evaluate_settings(config, data=ctx["data"], models=FAST)


def test_the_relevance_threshold_still_takes_a_rating_or_none(ctx):
    assert recfeat.evaluate_settings(data=ctx["data"], relevance_threshold=3).protocol.relevance_threshold == 3
    assert recfeat.evaluate_settings(data=ctx["data"], relevance_threshold="none").protocol.relevance_threshold == 0
    result = recfeat.evaluate(ctx["data"], models=FAST, k=3, relevance_threshold=None)
    assert result.info["relevance"] == "every held-out interaction"
    result = recfeat.evaluate(ctx["data"], models=FAST, k=3, relevance_threshold=4)
    assert result.info["relevance"] == "held-out interactions rated >= 4"


def test_a_dataframe_reads_exactly_as_the_same_table_in_a_csv_file(ctx):
    from_frame = recfeat.load_dataset(ctx["frame"])
    from_file = recfeat.load_dataset(ctx["csv"])
    pd.testing.assert_frame_equal(from_frame.interactions, from_file.interactions)
    assert from_frame.rating_scale == from_file.rating_scale
    # columns named otherwise are mapped with the loader's own options
    renamed = ctx["frame"].rename(columns={"user": "reader", "item": "book"})
    mapped = recfeat.load_dataset(renamed, user_col="reader", item_col="book")
    pd.testing.assert_frame_equal(mapped.interactions, from_file.interactions)
    # and every function that takes data takes the frame
    result = recfeat.evaluate(ctx["frame"], models=FAST, k=3)
    assert list(result.table.index) == ["global-mean", "popularity"]
    assert recfeat.make_split(from_frame, seed=1).kind == "random"


def test_bad_rows_in_a_dataframe_are_named_like_a_files(ctx):
    frame = ctx["frame"].copy()
    frame.loc[3, "rating"] = NAN
    with pytest.raises(DataError, match="DataFrame row 3"):
        recfeat.load_dataset(frame)
    kept = recfeat.load_dataset(frame, skip_bad_rows=True)
    assert kept.report["bad_rows_skipped"] == 1 and len(kept.interactions) == len(frame) - 1


@pytest.mark.parametrize("args, fragments", [
    (("--relevance-threshold", "nan"), ("--relevance-threshold", "nan")),
    (("--relevance-threshold", "-1"), ("--relevance-threshold", "-1")),
    (("--test-fraction", "nan"), ("--test-fraction",)),
    (("--k", "0"), ("--k",)),
    (("--seed", "-1"), ("--seed",)),
])  # fmt: skip
def test_the_command_line_only_formats_the_librarys_refusal(ctx, args, fragments):
    from recfeat.cli.main import cli

    r = CliRunner().invoke(cli, ["evaluate", str(ctx["csv"]), "--models", FAST, *args])
    assert_one_line_error(r, 2, *fragments)
