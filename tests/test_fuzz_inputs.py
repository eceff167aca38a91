"""Property-based tests of what users type: pipeline files, `--where` filters and command lines.
Whatever the input, the outcome is a valid result or one line naming the mistake: never a
traceback, and never user text run as code."""

from __future__ import annotations

import contextlib
import io
import json
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentsci.errors import LatentsciError, StoreError

# Deterministic (the suite must not flake) and writing no example database into the checkout.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
SENTINEL = "fuzz-sentinel"
# What an attacker would put in a value if anything ever eval'd, formatted or shelled it.
PAYLOADS = [f"__import__('pathlib').Path('{SENTINEL}').touch()", f"$(touch {SENTINEL})",
            f"`touch {SENTINEL}`", "{0.__class__.__mro__}", "${jndi:ldap://x}", "{{7*7}}"]


def assert_one_line(exc: BaseException) -> None:
    """A user-facing error: one of ours, on one printable line."""
    assert isinstance(exc, LatentsciError), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)


# ---- pipeline files ---------------------------------------------------------------------------

def toml_value(value) -> str:
    """A TOML literal for a value from the strategies below (JSON strings are TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else "nan"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


KEYS = st.sampled_from(["name", "workflow", "kind", "needs", "source", "split", "n_bits",
                        "batch_size", "epochs", "model", "seed", "use_gpu", "num_workers",
                        "description", "stages", "bogus"]) | TEXT.filter(bool)
SCALARS = (st.integers(-2**70, 2**70) | st.floats() | st.booleans() | TEXT
           | st.sampled_from(PAYLOADS) | st.sampled_from(["ingest", "fingerprints", "train",
                                                          "molecules", "fields", "../x.smi"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)
STAGE = st.dictionaries(KEYS, VALUES, max_size=5)


@st.composite
def pipeline_text(draw) -> str:
    """A pipeline file: mostly well-formed TOML with plausible and hostile keys and values,
    sometimes raw text."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.text(max_size=200) | st.sampled_from(["[stages", "a = [[[[", "\x00"]))
    lines = ["[pipeline]"]
    header = draw(st.dictionaries(st.sampled_from(["name", "workflow", "description", "x"]),
                                  SCALARS, max_size=3))
    header.setdefault("workflow", draw(st.sampled_from(["molecules", "fields", "nope"])))
    lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in header.items()]
    for name, table in draw(st.dictionaries(KEYS, STAGE, max_size=3)).items():
        lines.append(f"[stages.{json.dumps(name, ensure_ascii=False)}]")
        lines += [f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
                  for k, v in table.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def workflows_registry():
    """Both workflows' stage kinds, as the drivers check pipelines against them."""
    from workflows.fields import STAGES as FIELDS
    from workflows.molecules import STAGES as MOLECULES

    return {"molecules": MOLECULES, "fields": FIELDS}


def test_pipeline_files_load_or_fail_in_one_line(tmp_path, workflows_registry, monkeypatch):
    from latentsci.pipeline.spec import load_pipeline, plan

    monkeypatch.chdir(tmp_path)

    @FUZZ
    @given(text=pipeline_text(), raw=st.binary(max_size=40), as_bytes=st.booleans())
    def load(text: str, raw: bytes, as_bytes: bool) -> None:
        path = tmp_path / "p.toml"
        path.write_bytes(raw if as_bytes else text.encode("utf-8"))
        try:
            spec = load_pipeline(path)
            planned = plan(spec, workflows_registry.get(spec.workflow, {}))
        except LatentsciError as exc:
            assert_one_line(exc)
        else:
            assert all(len(p.config_hash) == 12 for p in planned)
        assert not (tmp_path / SENTINEL).exists()

    load()


def test_loader_regressions_found_by_fuzzing(tmp_path, workflows_registry):
    from latentsci.pipeline.spec import load_pipeline, plan

    cases = {
        b"\xff\xfe not utf-8": "not UTF-8 text",
        b"a = " + b"[" * 5000: "not valid TOML",
        b'[pipeline]\nname = "x"\nworkflow = "molecules"\n[stages."a\\nb"]\nkind = "ingest"\n':
            "stages.a\\nb.source: missing (required)",
        ('[pipeline]\nname = "x"\nworkflow = "molecules"\n[stages.i]\nkind = "ingest"\n'
         f'source = "{"x" * 5000}.smi"\n').encode(): "stages.i.source: cannot read",
    }
    for raw, expected in cases.items():
        path = tmp_path / "p.toml"
        path.write_bytes(raw)
        with pytest.raises(LatentsciError) as caught:
            plan(load_pipeline(path), workflows_registry["molecules"])
        assert_one_line(caught.value)
        assert expected in str(caught.value), str(caught.value)


# ---- --where filters --------------------------------------------------------------------------

COLUMNS = ["id", "qed", "sa", "split"]
TABLE = {"id": np.array(["a-1", "a-2", "b-3"]), "qed": np.array([0.1, 0.8, 0.95]),
         "sa": np.array([2.0, 3.5, 1.0]), "split": np.array(["train", "test", "train"])}
ATOMS = (st.sampled_from(COLUMNS + ["logp", "__import__", "open", "True", "None"])
         | st.integers(-5, 5).map(str) | st.floats(-2, 2, allow_nan=False).map(repr)
         | st.sampled_from(["'train'", "'a-1'", '"x"', "[1, 2]", "('train', 'test')"]))
HOSTILE = st.sampled_from([f"open('{SENTINEL}', 'w')",
                           f"__import__('os').system('touch {SENTINEL}')",
                           "qed.__class__", "(lambda: 1)()", "[x for x in qed]", "qed if 1 else sa",
                           "f'{qed}'", "qed + sa > 1", "qed[0]", "*qed", "{1: 2}", "qed := 1"])


def _nest(inner):
    """Larger filters out of smaller ones, with the operators the filter language has and a few
    it does not."""
    ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!=", "in", "not in", "is", "+", "**"])
    return (st.tuples(inner, ops, inner).map(" ".join)
            | st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join)
            | inner.map(lambda e: f"not {e}") | inner.map(lambda e: f"({e})"))


EXPRESSIONS = st.recursive(ATOMS | HOSTILE, _nest, max_leaves=6)
@FUZZ
@given(text=EXPRESSIONS | TEXT)
def test_where_filters_parse_or_fail_in_one_line(text: str) -> None:
    """Reading a filter: any text becomes a checked filter or one line naming the problem, and
    nothing in it runs (the filter is an AST walked against a whitelist, never eval'd)."""
    from latentsci.store.predicate import Predicate

    try:
        predicate = Predicate(text, COLUMNS)
    except StoreError as exc:
        assert_one_line(exc)
        assert str(exc).startswith("filter ")
    else:
        assert set(predicate.names) <= set(COLUMNS)
    assert not Path(SENTINEL).exists()


@FUZZ
@given(text=EXPRESSIONS | TEXT)
def test_where_filters_evaluate_to_a_row_mask_or_one_line(text: str) -> None:
    """Applying a filter: a boolean mask with one entry per row, or one line."""
    from latentsci.store.predicate import Predicate

    try:
        mask = Predicate(text, COLUMNS).evaluate(TABLE)
    except StoreError as exc:
        assert_one_line(exc)
    else:
        assert mask.dtype == bool and mask.shape == (3,)


# Found by the property above (each crashed or gave a mask of the wrong length before the
# predicate checked value roles); now each is one line naming what is wrong.
EVALUATION_BUGS = {
    "-id": "a negation is not a condition",
    "-id > 0": "minus of 'id', which is not a number",
    "not split": "column 'split' holds",
    "-[1, 2]": "a negation is not a condition",
    "qed > 0.5 and 0": "the constant 0 is not a condition",
    "[1, 2]": "a list is not a condition",
    "not " * 3000 + "qed": "nested too deeply",
}


@pytest.mark.parametrize("text", list(EVALUATION_BUGS), ids=list(EVALUATION_BUGS.values()))
def test_where_filter_bugs_found_by_fuzzing(text):
    from latentsci.store.predicate import Predicate

    with pytest.raises(StoreError, match=EVALUATION_BUGS[text]) as raised:
        Predicate(text, COLUMNS).evaluate(TABLE)
    assert_one_line(raised.value)


def test_where_filter_never_runs_code(tmp_path, monkeypatch):
    from latentsci.store.predicate import Predicate

    monkeypatch.chdir(tmp_path)
    for text in [f"open('{SENTINEL}', 'w')", f"__import__('os').system('touch {SENTINEL}')",
                 "qed.__class__.__mro__", "(lambda: 1)()"]:
        with pytest.raises(StoreError):
            Predicate(text, COLUMNS).evaluate(TABLE)
    assert not (tmp_path / SENTINEL).exists()
    assert Predicate("qed > 0.5 and split == 'train'", COLUMNS).evaluate(TABLE).tolist() == [
        False, False, True]


# ---- command lines ----------------------------------------------------------------------------

VERBS = ["run", "submit", "status", "logs", "query", "interpolate", "ood", "encode", "sample",
         "evaluate", "rollout", "score"]
FLAGS = ["--address", "--run-dir", "--force", "--profile", "--check", "--where", "--ids", "-k",
         "--limit", "--json", "--out", "-n", "--model", "--smiles", "--metric", "--help", "-h",
         "fit", "gate", "--store", "--list", "--objective", "--steps", "--", "-", "--x=1"]
TOKENS = st.sampled_from(FLAGS) | st.sampled_from(PAYLOADS) | st.text(
    string.ascii_letters + string.digits + "-=./_ '\"\n\t$;", max_size=12)


@FUZZ
@given(argv=st.tuples(st.sampled_from(VERBS) | TOKENS, st.lists(TOKENS, max_size=6)).map(
    lambda t: [t[0], *t[1]]))
def test_command_lines_parse_or_fail_in_one_line(argv: list[str]) -> None:
    from latentsci.cli import build_parser

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:
            code = exit_.code
        else:
            code = None
    if code is None:
        assert callable(args.fn) and err.getvalue() == ""
    elif code == 0:
        assert "usage:" in out.getvalue() and err.getvalue() == ""  # --help: a valid result
    else:
        lines = err.getvalue().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: latentsci"), lines
    assert not Path(SENTINEL).exists()
