/*
 * generate.c: continue a prompt with the bundled demo model through the Concord C API.
 *
 *   cargo build --release -p concord-ffi
 *   gcc -std=c11 -Wall -Werror -Iffi/include examples/c/generate.c \
 *       -Ltarget/release -lconcord -Wl,-rpath,"$PWD/target/release" -o target/generate
 *   ./target/generate ["prompt"]
 *
 * Prints the prompt and its continuation (greedy, 48 tokens) and exits 0; on an error prints
 * concord_last_error() and exits 1.
 */
#include <concord.h>

#include <stdio.h>
#include <stdlib.h>

/* Prints a failed call's status and message, and exits. */
static void check(concord_status status, const char *what) {
    if (status != CONCORD_OK) {
        fprintf(stderr, "generate: %s failed (%d): %s\n", what, (int)status,
                concord_last_error());
        exit(1);
    }
}

/* concord_generate's callback: print each piece of text as it arrives. */
static bool print_piece(uint32_t token, const char *piece, void *user_data) {
    (void)token;
    size_t *count = user_data;
    ++*count;
    fputs(piece, stdout);
    fflush(stdout);
    return true;
}

int main(int argc, char **argv) {
    const char *prompt = argc > 1 ? argv[1] : "It was the best of times,";
    fprintf(stderr, "%s, model %s\n", concord_version(), concord_demo_model_path());

    concord_model_params mparams = concord_model_default_params();
    mparams.backend = "cpu";
    concord_model *model = NULL;
    check(concord_model_load(concord_demo_model_path(), &mparams, &model), "concord_model_load");

    /* Size query, then the real call. */
    size_t n_prompt = 0;
    concord_status status = concord_tokenize(model, prompt, true, NULL, 0, &n_prompt);
    if (status != CONCORD_ERR_BUFFER_TOO_SMALL) {
        check(status, "concord_tokenize (size query)");
    }
    uint32_t *ids = malloc(n_prompt * sizeof *ids);
    if (ids == NULL) {
        fprintf(stderr, "generate: out of memory\n");
        return 1;
    }
    check(concord_tokenize(model, prompt, true, ids, n_prompt, &n_prompt), "concord_tokenize");

    concord_generate_params gparams = concord_generate_params_default();
    gparams.max_new_tokens = 48;
    gparams.temperature = 0.0f;

    size_t generated = 0;
    printf("%s", prompt);
    check(concord_generate(model, ids, n_prompt, &gparams, print_piece, &generated),
          "concord_generate");
    printf("\n");
    fprintf(stderr, "generate: %zu prompt tokens, %zu generated\n", n_prompt, generated);

    free(ids);
    check(concord_model_free(model), "concord_model_free");
    return generated > 0 ? 0 : 1;
}
