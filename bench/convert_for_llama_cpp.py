#!/usr/bin/env python3
"""Runs llama.cpp's own convert_hf_to_gguf.py on a synthetic Concord checkpoint.

Usage: convert_for_llama_cpp.py LLAMA_CPP_SOURCE_DIR [convert_hf_to_gguf.py arguments...]

The converter names the BPE pre-tokenizer by hashing how the tokenizer splits a fixed text;
only released tokenizers' hashes are known to it, and the synthetic checkpoint carries a
small byte-level BPE tokenizer (256 byte tokens, BOS, EOS), so the check is answered here:
the vocabulary is labelled with llama.cpp's "deepseek-v3" pre-tokenizer, the one the real
model uses. Everything else (tensor names, MLA layout, expert merging, GGUF metadata) is the
converter's own. The benchmark feeds token ids, so the tokenizer does not affect timings.
"""

import runpy
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    source = Path(sys.argv[1]).resolve()
    script = source / "convert_hf_to_gguf.py"
    if not script.is_file():
        sys.exit(f"{script}: not found (is {source} a llama.cpp source tree?)")
    # The converter imports its own `conversion` package and the bundled gguf-py.
    sys.path[:0] = [str(source), str(source / "gguf-py")]
    from conversion.base import TextModel  # noqa: E402 (needs the path above)

    TextModel.get_vocab_base_pre = lambda self, tokenizer: "deepseek-v3"
    sys.argv = [str(script)] + sys.argv[2:]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
