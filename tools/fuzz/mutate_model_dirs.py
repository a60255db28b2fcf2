#!/usr/bin/env python3
"""Mutation fuzz of model directories against the `concord` CLI (Python 3 stdlib only).

Copies a fixture model directory, applies one or more random mutations (config.json fields,
index.json shard paths, safetensors headers, tensor bytes), runs

    concord logits --model DIR --ids 0,1,2 --out DIR/out.json

under a timeout and a virtual-memory limit, and classifies the outcome:

    error    exit 1 with a message on stderr (the wanted outcome for a broken input)
    success  exit 0
    panic    exit 101 or "panicked" on stderr
    abort    killed by a signal (SIGABRT from a failed allocation, SIGSEGV, ...)
    hang     the timeout expired
    other    any other exit status

Every panic/abort/hang/other is kept (directory + mutation log) under --keep for reproduction.
Not part of CI; a smoke run is `--runs 50`. `--via ffi` runs `concord_model_load` in a small C
host instead (tools/fuzz/load_model.c), where an abort would kill the embedding process:

    python3 tools/fuzz/mutate_model_dirs.py --runs 2000 --seed 1
    gcc -std=c11 -Iffi/include tools/fuzz/load_model.c -Ltarget/release -lconcord \
        -Wl,-rpath,$PWD/target/release -o target/load_model
    python3 tools/fuzz/mutate_model_dirs.py --via ffi --runs 2000 --seed 2
"""

import argparse
import collections
import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

HUGE = [2**24 + 1, 2**31, 2**32, 2**40, 2**53, 2**62, 2**64 - 1, 10**30]
ODD = [0, -1, -(2**40), 1.5, 1e308, -1e308, "7", "", None, True, [], {}, [1, 2]]
FLOAT_ODD = [0.0, -1.0, 1e-320, 1e39, 1e308, -0.0, "nan", None, 1, 2**64]
INT_FIELDS = [
    "vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "n_shared_experts",
    "n_routed_experts", "num_experts_per_tok", "n_group", "topk_group",
    "first_k_dense_replace", "moe_layer_freq", "q_lora_rank", "kv_lora_rank",
    "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "max_position_embeddings",
    "num_nextn_predict_layers", "bos_token_id", "eos_token_id",
]
FLOAT_FIELDS = ["rms_norm_eps", "rope_theta", "routed_scaling_factor"]
ROPE_FIELDS = [
    "factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale",
    "mscale_all_dim", "attention_factor", "type",
]
DTYPES = ["F32", "BF16", "F16", "F8_E4M3", "F8_E5M2", "F64", "I8", "BOOL", "U8", "XX"]


# ---------------------------------------------------------------- config.json / index.json


def mutate_config(rng, d, log):
    path = os.path.join(d, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    kind = rng.random()
    if kind < 0.45:
        field = rng.choice(INT_FIELDS)
        value = rng.choice(HUGE + ODD) if rng.random() < 0.8 else rng.randint(0, 4096)
        cfg[field] = value
        log.append(f"config {field} = {value!r}")
    elif kind < 0.6:
        field = rng.choice(FLOAT_FIELDS)
        value = rng.choice(FLOAT_ODD)
        cfg[field] = value
        log.append(f"config {field} = {value!r}")
    elif kind < 0.75:
        rope = cfg.get("rope_scaling")
        if not isinstance(rope, dict):
            rope = {"type": "yarn", "factor": 4, "original_max_position_embeddings": 64}
        field = rng.choice(ROPE_FIELDS)
        rope[field] = rng.choice(HUGE + ODD + FLOAT_ODD + ["yarn", "linear", "dynamic"])
        cfg["rope_scaling"] = rope
        log.append(f"config rope_scaling.{field} = {rope[field]!r}")
    elif kind < 0.85:
        field = rng.choice(sorted(cfg))
        del cfg[field]
        log.append(f"config removed {field}")
    elif kind < 0.93:
        q = {"quant_method": "fp8", "fmt": "e4m3",
             "weight_block_size": [rng.choice([0, 1, 7, 128, 2**20, 2**40]),
                                   rng.choice([0, 1, 128, -1, 2**63])]}
        cfg["quantization_config"] = q
        log.append(f"config quantization_config = {q}")
    else:
        text = json.dumps(cfg)
        cut = rng.randint(0, len(text))
        with open(path, "w") as f:
            f.write(text[:cut])
        log.append(f"config truncated at {cut}")
        return
    with open(path, "w") as f:
        # Python's json writes inf/nan as Infinity/NaN, which JSON parsers reject: also a case.
        json.dump(cfg, f)


def mutate_index(rng, d, log):
    path = os.path.join(d, "model.safetensors.index.json")
    if not os.path.exists(path):
        shards = [f for f in os.listdir(d) if f.endswith(".safetensors")]
        if not shards:
            return
        names = read_header(os.path.join(d, shards[0]))[0].keys()
        index = {"weight_map": {n: shards[0] for n in names if n != "__metadata__"}}
    else:
        with open(path) as f:
            index = json.load(f)
    wm = index.get("weight_map", {})
    if not wm:
        return
    key = rng.choice(sorted(wm))
    bad = rng.choice([
        "../" + str(wm[key]), "/etc/passwd", "/dev/zero", "./" + str(wm[key]), "sub/../../x",
        "", "nonexistent.safetensors", 7, None, "config.json", "escape-link.safetensors",
    ])
    if bad == "escape-link.safetensors":
        target = os.path.join(os.path.dirname(d), "outside.safetensors")
        shutil.copy(os.path.join(d, str(wm[key])) if os.path.exists(os.path.join(d, str(wm[key])))
                    else path, target)
        os.symlink(target, os.path.join(d, bad))
    wm[key] = bad
    with open(path, "w") as f:
        json.dump(index, f)
    log.append(f"index weight_map[{key}] = {bad!r}")


# ---------------------------------------------------------------- safetensors


def read_header(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_st(path, header, data, pad=True):
    h = json.dumps(header).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def pick_shard(rng, d):
    shards = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    return os.path.join(d, rng.choice(shards)) if shards else None


def mutate_header(rng, d, log):
    path = pick_shard(rng, d)
    if path is None:
        return
    header, data = read_header(path)
    names = [n for n in header if n != "__metadata__"]
    name = rng.choice(names)
    t = header[name]
    kind = rng.randrange(6)
    if kind == 0:
        t["dtype"] = rng.choice(DTYPES)
        log.append(f"header {name}.dtype = {t['dtype']}")
    elif kind == 1:
        t["shape"] = [rng.choice([0, 1, 2**31, 2**62, -1]) for _ in range(rng.randint(0, 3))]
        log.append(f"header {name}.shape = {t['shape']}")
    elif kind == 2:
        b, e = t["data_offsets"]
        t["data_offsets"] = [b, rng.choice([e + 1, e - 1, 2**63, b])]
        log.append(f"header {name}.data_offsets = {t['data_offsets']}")
    elif kind == 3:
        del header[name]
        log.append(f"header removed {name}")
    elif kind == 4:
        with open(path, "rb") as f:
            raw = f.read()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", rng.choice([0, 7, 2**40, 2**64 - 1])) + raw[8:])
        log.append("header length prefix corrupted")
        return
    else:
        extra = f"model.layers.{rng.choice([2, 3, 5, 99, 4095])}.extra.weight"
        header[extra] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
        data += struct.pack("<f", 1.0)
        log.append(f"header added {extra}")
    write_st(path, header, data)


def mutate_bytes(rng, d, log):
    """Writes a NaN/Inf (or an e4m3fn NaN code) into one tensor's bytes."""
    path = pick_shard(rng, d)
    if path is None:
        return
    header, data = read_header(path)
    names = [n for n in header if n != "__metadata__"]
    name = rng.choice(names)
    t = header[name]
    b, e = t["data_offsets"]
    if e <= b:
        return
    data = bytearray(data)
    dtype = t["dtype"]
    if dtype == "F32":
        size, bad = 4, rng.choice([struct.pack("<f", float("nan")), struct.pack("<f", float("inf")),
                                   struct.pack("<f", float("-inf"))])
    elif dtype in ("BF16", "F16"):
        size = 2
        bad = rng.choice([b"\xc0\x7f", b"\x80\x7f", b"\x80\xff"] if dtype == "BF16"
                         else [b"\x00\x7e", b"\x00\x7c"])
    elif dtype == "F8_E4M3":
        size, bad = 1, rng.choice([b"\x7f", b"\xff"])
    else:
        return
    i = rng.randrange((e - b) // size)
    data[b + i * size:b + (i + 1) * size] = bad
    write_st(path, header, bytes(data))
    log.append(f"bytes {name}[{i}] = {bad.hex()} ({dtype})")


MUTATORS = [(mutate_config, 0.5), (mutate_index, 0.1), (mutate_header, 0.25), (mutate_bytes, 0.15)]


# ---------------------------------------------------------------- run and classify


def limit_memory(bytes_):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (bytes_, bytes_))
        os.setsid()
    return apply


def classify(proc_rc, stderr, timed_out):
    if timed_out:
        return "hang"
    if proc_rc == 101 or "panicked" in stderr:
        return "panic"
    if proc_rc < 0:
        return "abort"
    if proc_rc == 0:
        return "success"
    if proc_rc == 1 and stderr.strip():
        return "error"
    return "other"


def run_one(binary, d, timeout, mem, via):
    if via == "ffi":
        cmd = [binary, d]  # tools/fuzz/load_model.c: concord_model_load in a C host
    else:
        cmd = [binary, "logits", "--model", d, "--ids", "0,1,2", "--out",
               os.path.join(d, "out.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=limit_memory(mem))
    try:
        _, err = proc.communicate(timeout=timeout)
        return classify(proc.returncode, err.decode(errors="replace"), False), err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "hang", b""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--via", choices=["cli", "ffi"], default="cli",
                    help="cli: `concord logits`; ffi: concord_model_load from a C host "
                         "(--binary is then the compiled tools/fuzz/load_model.c)")
    ap.add_argument("--binary", default=None,
                    help="default: target/release/concord (cli), target/load_model (ffi)")
    ap.add_argument("--fixtures", nargs="+",
                    default=["models/demo", "tests/fixtures/fp8_block_scaled",
                             "tests/fixtures/v2_group_limited", "tests/fixtures/qlora_null"])
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--mem-gib", type=float, default=8.0)
    ap.add_argument("--keep", default="target/fuzz-model-dirs", help="where failures are kept")
    args = ap.parse_args()
    if args.binary is None:
        args.binary = "target/release/concord" if args.via == "cli" else "target/load_model"

    rng = random.Random(args.seed)
    counts = collections.Counter()
    mem = int(args.mem_gib * 2**30)
    os.makedirs(args.keep, exist_ok=True)
    work = tempfile.mkdtemp(prefix="concord-mutate-")
    try:
        for run in range(args.runs):
            case = os.path.join(work, f"case{run}")
            os.makedirs(case)
            d = os.path.join(case, "model")
            shutil.copytree(rng.choice(args.fixtures), d)
            log = []
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                mutate = rng.choices([m for m, _ in MUTATORS], [w for _, w in MUTATORS])[0]
                try:
                    mutate(rng, d, log)
                except (ValueError, KeyError, TypeError, struct.error, OSError) as e:
                    log.append(f"(mutation skipped: {e})")
            outcome, err = run_one(args.binary, d, args.timeout, mem, args.via)
            counts[outcome] += 1
            if outcome in ("panic", "abort", "hang", "other"):
                kept = os.path.join(args.keep, f"{outcome}-{args.seed}-{run}")
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(case, kept, symlinks=True)
                with open(os.path.join(kept, "mutations.txt"), "w") as f:
                    f.write("\n".join(log) + "\n\n" + err.decode(errors="replace")[-4000:])
                print(f"[{run}] {outcome}: {'; '.join(log)}", flush=True)
            shutil.rmtree(case, ignore_errors=True)
            if (run + 1) % 100 == 0:
                print(f"{run + 1} runs: {dict(counts)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"via": args.via, "runs": args.runs, "seed": args.seed, **counts}))
    return 0 if not (counts["panic"] or counts["abort"] or counts["hang"] or counts["other"]) else 1


if __name__ == "__main__":
    sys.exit(main())
