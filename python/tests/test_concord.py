"""The Python bindings against the `concord` command on the bundled demo model: the same text,
the same sampled tokens, the same logits bytes, and errors as exceptions."""

import json
import pathlib
import struct
import threading
import time

import numpy as np
import pytest

import concord

PROMPT = "It was the best of times,"


def read_safetensors(path):
    """Tensors of a safetensors file as {name: (dtype, shape, raw bytes)} (the format's spec:
    an 8-byte little-endian header length, a JSON header, then the data)."""
    blob = pathlib.Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len])
    data = blob[8 + header_len :]
    return {
        name: (t["dtype"], t["shape"], data[t["data_offsets"][0] : t["data_offsets"][1]])
        for name, t in header.items()
        if name != "__metadata__"
    }


def test_load_reports_what_it_loaded(model):
    assert model.backend == "cpu"
    assert model.vocab_size > 0
    assert model.context > 0
    assert model.eos_token_ids


def test_greedy_generate_matches_the_cli(model, cli):
    text = model.generate(PROMPT, max_tokens=30, temperature=0.0)
    # The command echoes the prompt, then the continuation, then a newline.
    want = cli("generate", "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "30")
    assert (PROMPT + text + "\n").encode() == want
    assert text  # the demo model continues this prompt


def test_seeded_sampling_is_reproducible_and_matches_the_cli(model, cli):
    # The demo model is sure of this text: only a hot temperature lets the seed matter.
    args = dict(max_tokens=24, temperature=2.0, top_p=0.99, top_k=200, seed=7)
    first = model.generate(PROMPT, **args)
    assert model.generate(PROMPT, **args) == first
    want = cli(
        "generate", "--prompt", PROMPT, "--max-new-tokens", "24", "--temperature", "2",
        "--top-p", "0.99", "--top-k", "200", "--seed", "7",
    )
    assert (PROMPT + first + "\n").encode() == want
    others = {model.generate(PROMPT, **dict(args, seed=s)) for s in range(1, 6)}
    assert len(others | {first}) > 1, "the seed changes nothing"


def test_min_p_and_penalties_match_the_cli(model, cli):
    # The oracle is the command line's independent path through the same options (its own
    # flag parsing and params); the penalties must change the demo model's greedy text.
    args = dict(max_tokens=24, temperature=0.0, repetition_penalty=1.8, presence_penalty=1.5,
                frequency_penalty=0.7)
    text = model.generate(PROMPT, **args)
    want = cli(
        "generate", "--prompt", PROMPT, "--max-new-tokens", "24", "--temperature", "0",
        "--repetition-penalty", "1.8", "--presence-penalty", "1.5", "--frequency-penalty", "0.7",
    )
    assert (PROMPT + text + "\n").encode() == want
    assert text != model.generate(PROMPT, max_tokens=24, temperature=0.0)
    sampled = dict(max_tokens=24, temperature=1.5, seed=5, min_p=0.2)
    want = cli(
        "generate", "--prompt", PROMPT, "--max-new-tokens", "24", "--temperature", "1.5",
        "--seed", "5", "--min-p", "0.2",
    )
    assert (PROMPT + model.generate(PROMPT, **sampled) + "\n").encode() == want
    assert "".join(model.stream(PROMPT, **sampled)) == model.generate(PROMPT, **sampled)
    with pytest.raises(concord.ConcordError, match="min_p"):
        model.generate(PROMPT, min_p=2.0)


@pytest.mark.parametrize(
    "args",
    [
        dict(max_tokens=40),
        dict(max_tokens=40, temperature=2.0, seed=3),
        dict(max_tokens=40, stop=["age"]),
    ],
)
def test_stream_pieces_join_to_generate(model, args):
    pieces = list(model.stream(PROMPT, **args))
    assert len(pieces) > 1
    assert all(pieces)
    assert "".join(pieces) == model.generate(PROMPT, **args)


def test_stop_strings_end_the_text_before_them(model):
    full = model.generate(PROMPT, max_tokens=40)
    assert "age" in full  # " ... it was the age of wisdom" on the demo model
    assert model.generate(PROMPT, max_tokens=40, stop=["age", "zzz"]) == full[: full.index("age")]
    assert model.generate(PROMPT, max_tokens=40, stop=["zzz"]) == full


def test_max_tokens_and_eos(model, cli):
    short = model.generate(PROMPT, max_tokens=3)
    assert len(model.encode(short, add_bos=False)) <= 3
    # Past EOS only with ignore_eos (as `concord generate --ignore-eos`).
    long = model.generate(PROMPT, max_tokens=200, ignore_eos=True)
    want = cli("generate", "--prompt", PROMPT, "--max-new-tokens", "200", "--ignore-eos")
    assert (PROMPT + long + "\n").encode() == want


def test_generation_ends_at_eos_unless_ignore_eos(model, cli):
    # At temperature 10, seed 17, the demo model draws its EOS as the 10th token.
    args = ["--prompt", PROMPT, "--max-new-tokens", "40", "--temperature", "10", "--seed", "17"]
    ids = cli("generate", *args, "--ignore-eos", "--emit", "ids").decode().split()[-1]
    assert ids.split(",")[9] == str(model.eos_token_ids[0])
    sampling = dict(max_tokens=40, temperature=10.0, seed=17)
    stopped = model.generate(PROMPT, **sampling)
    assert (PROMPT + stopped + "\n").encode() == cli("generate", *args)
    ran_on = model.generate(PROMPT, ignore_eos=True, **sampling)
    # These 40 tokens end inside a character: the command leaves the incomplete bytes out, the
    # bindings render them as U+FFFD, as decoding the same ids at once does.
    assert (PROMPT + ran_on + "\n").encode() == cli("generate", *args, "--ignore-eos")[:-1] + (
        "\ufffd\n".encode()
    )
    assert ran_on == model.decode([int(i) for i in ids.split(",")])
    assert len(ran_on) > len(stopped)


def test_logits_equal_the_cli_bytes(model, cli, tmp_path):
    ids = [0, 305, 303, 279, 27]
    out = tmp_path / "logits.safetensors"
    cli("logits", "--ids", ",".join(map(str, ids)), "--out", str(out))
    dtype, shape, raw = read_safetensors(out)["logits"]
    got = model.logits(ids)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float32
    assert dtype == "F32" and list(got.shape) == shape == [len(ids), model.vocab_size]
    assert got.tobytes() == raw
    assert got.flags.c_contiguous


def test_encode_and_decode(model):
    ids = model.encode(PROMPT)
    assert ids[0] == model.encode("x")[0]  # BOS first
    assert model.encode(PROMPT, add_bos=False) == ids[1:]
    assert model.decode(ids) == PROMPT
    assert PROMPT in model.decode(ids, skip_special=False)


def test_a_bad_directory_raises_with_its_path(tmp_path, demo_dir):
    missing = tmp_path / "no-such-model"
    with pytest.raises(concord.ConcordError) as e:
        concord.Model.load(str(missing))
    assert str(missing) in str(e.value)
    with pytest.raises(concord.ConcordError, match="unknown backend 'nope'"):
        concord.Model.load(str(demo_dir), backend="nope")


def test_bad_arguments_raise(model):
    with pytest.raises(concord.ConcordError, match="temperature"):
        model.generate(PROMPT, temperature=-1.0)
    with pytest.raises(concord.ConcordError, match="top_p"):
        list(model.stream(PROMPT, top_p=0.0))
    with pytest.raises(concord.ConcordError):
        model.logits([model.vocab_size + 5])
    with pytest.raises(concord.ConcordError):
        model.logits([])


def test_backends_lists_cpu_available():
    found = {b["name"]: b for b in concord.backends()}
    assert {"cpu", "opencl", "cuda", "rocm", "ascend"} <= set(found)
    assert found["cpu"]["available"] is True and found["cpu"]["reason"] is None
    for b in found.values():
        assert b["available"] or b["reason"]


def test_generation_releases_the_gil(model):
    # A thread ticking once per millisecond needs the GIL for every tick: while generation
    # holds it, the ticks stop (at most one slips in around the call's ends).
    ticks = [0]
    done = threading.Event()

    def tick():
        while not done.is_set():
            time.sleep(0.001)
            ticks[0] += 1

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        time.sleep(0.01)
        before = ticks[0]
        started = time.perf_counter()
        model.generate(PROMPT, max_tokens=model.context, ignore_eos=True)
        took = time.perf_counter() - started
        during = ticks[0] - before
    finally:
        done.set()
        ticker.join()
    assert took > 0.05, f"generation took {took:.3f} s: too short to tell"
    assert during >= 10, f"{during} ticks in {took:.2f} s of generation: the GIL was held"
