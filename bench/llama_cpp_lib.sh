# Shared by bench/compare_llama_cpp.sh and bench/compare_serving.sh (sourced, not run): the
# synthetic model, llama.cpp's source, build and conversion, each cached under $work.
# The caller sets: root (the repository), work (the cache), llama_cpp_python (the version of
# the package whose source distribution supplies llama.cpp) and a `log` function.

# Sets `concord` to the release binary (built if missing) unless the caller named one.
ensure_concord() {
    if [[ -z ${concord:-} ]]; then
        concord="$root/target/release/concord"
        [[ -x $concord ]] || (cd "$root" && cargo build --release -p concord-cli)
    fi
}

# ensure_synthetic_model HIDDEN LAYERS [fp8]: sets `model` to the directory of the
# random-weight DeepSeek-V3-shaped model (fixed seed), its bf16/ Hugging Face copy written
# with `concord bench --synthetic-save`, and with "fp8" also its fp8/ copy (`concord convert`).
ensure_synthetic_model() {
    model="$work/models/v3-h$1-l$2"
    if [[ ! -f $model/bf16/config.json ]]; then
        log "writing the synthetic model to $model/bf16"
        rm -rf "$model"
        mkdir -p "$model"
        "$concord" bench --synthetic-save "$model/bf16" --synthetic-hidden "$1" --synthetic-layers "$2" >&2
    fi
    if [[ ${3:-} == fp8 && ! -f $model/fp8/config.json ]]; then
        log "converting it to FP8 for Concord"
        "$concord" convert --to fp8 "$model/bf16" "$model/fp8" >&2
    fi
}

# Sets `llama` (the llama.cpp source tree), `llama_version` and `llama_commit`, downloading
# the llama-cpp-python source distribution if it is not cached.
ensure_llama_cpp_source() {
    src="$work/llama-cpp-python-$llama_cpp_python"
    if [[ ! -f $src/vendor/llama.cpp/CMakeLists.txt ]]; then
        log "downloading the llama-cpp-python $llama_cpp_python source distribution"
        mkdir -p "$work/download"
        # --no-binary for this package only: the sdist, not a wheel; its build tools may be wheels.
        python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
            "llama-cpp-python==$llama_cpp_python" -d "$work/download" >&2
        rm -rf "$src"
        tar -xzf "$work/download/llama_cpp_python-$llama_cpp_python.tar.gz" -C "$work"
        mv "$work/llama_cpp_python-$llama_cpp_python" "$src"
    fi
    llama="$src/vendor/llama.cpp"
    llama_version="llama-cpp-python $llama_cpp_python"
    # The package's changelog names the llama.cpp commit each release vendors.
    llama_commit=$(awk -v v="## [$llama_cpp_python]" '$0 == v {on=1; next} on && /^## / {exit}
        on && match($0, /llama\.cpp@[0-9a-f]+/) {print substr($0, RSTART + 10, RLENGTH - 10); exit}' \
        "$src/CHANGELOG.md" || true)
}

# ensure_llama_cpp_build BUILD_DIR SERVER TARGET...: builds the TARGETs (llama-bench,
# llama-quantize, llama-server, …) in BUILD_DIR with GGML_NATIVE, LLAMA_BUILD_SERVER=SERVER
# (ON or OFF), unless they are there; puts BUILD_DIR/bin on LD_LIBRARY_PATH.
ensure_llama_cpp_build() {
    local build=$1 server=$2 missing=0 target
    shift 2
    for target in "$@"; do
        [[ -x $build/bin/$target ]] || missing=1
    done
    if ((missing)); then
        command -v cmake >/dev/null || { echo "${0##*/}: cmake is missing (Debian: apt-get install cmake g++)" >&2; exit 1; }
        log "building $* (log: $work/llama-cpp-build.log)"
        {
            cmake -S "$llama" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
                -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
                -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER="$server" -DLLAMA_BUILD_UI=OFF
            cmake --build "$build" --config Release -j "$(nproc)" --target "$@"
        } >"$work/llama-cpp-build.log" 2>&1 || { tail -20 "$work/llama-cpp-build.log" >&2; exit 1; }
    fi
    # The build's RUNPATH is absolute: a --work directory that was moved still finds its
    # libraries (libllama, libggml*) beside the programs.
    export LD_LIBRARY_PATH="$build/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# Writes $model/llama-bf16.gguf with llama.cpp's own convert_hf_to_gguf.py (in a venv with
# its Python requirements under $work/venv) unless it is there.
ensure_gguf_bf16() {
    local venv="$work/venv"
    if [[ ! -f $venv/.converter-ready ]]; then
        log "installing the converter's Python requirements into $venv"
        python3 -m venv "$venv"
        # convert_hf_to_gguf.py imports torch at the top, so it cannot run without it.
        "$venv/bin/pip" install --quiet "torch" "transformers" "numpy" "sentencepiece" \
            "protobuf" "safetensors" "pyyaml" "tqdm" "requests" >&2
        touch "$venv/.converter-ready"
    fi
    if [[ ! -f $model/llama-bf16.gguf ]]; then
        log "converting with convert_hf_to_gguf.py"
        "$venv/bin/python" "$root/bench/convert_for_llama_cpp.py" "$llama" "$model/bf16" \
            --outtype bf16 --outfile "$model/llama-bf16.gguf.tmp" >"$work/convert.log" 2>&1 \
            || { tail -20 "$work/convert.log" >&2; exit 1; }
        mv "$model/llama-bf16.gguf.tmp" "$model/llama-bf16.gguf"
    fi
}
