/*
 * misuse.c: feeds the Concord C API every kind of misuse it promises to survive and checks each
 * call returns the documented status and leaves a message in concord_last_error() that names the
 * function. Exits 0 when every expectation holds; on the first that does not, prints it and
 * exits 1. Run from the repository root: it uses concord_demo_model_path() and the MTP fixture
 * tests/fixtures/mtp_release_layout (or $CONCORD_MTP_MODEL).
 *
 * Built and run by ci/ffi.sh (also under valgrind) and by ffi/tests/c_programs.rs.
 */
#include <concord.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks;

static void fail(int line, const char *what, const char *detail) {
    fprintf(stderr, "misuse.c:%d: FAILED: %s: %s\n", line, what, detail);
    fprintf(stderr, "  concord_last_error(): \"%s\"\n", concord_last_error());
    exit(1);
}

static const char *status_name(concord_status s) {
    switch (s) {
    case CONCORD_OK: return "CONCORD_OK";
    case CONCORD_DONE: return "CONCORD_DONE";
    case CONCORD_ERR_INVALID_ARGUMENT: return "CONCORD_ERR_INVALID_ARGUMENT";
    case CONCORD_ERR_INVALID_HANDLE: return "CONCORD_ERR_INVALID_HANDLE";
    case CONCORD_ERR_BUFFER_TOO_SMALL: return "CONCORD_ERR_BUFFER_TOO_SMALL";
    case CONCORD_ERR_UNAVAILABLE: return "CONCORD_ERR_UNAVAILABLE";
    case CONCORD_ERR_CANCELLED: return "CONCORD_ERR_CANCELLED";
    case CONCORD_ERR_MODEL: return "CONCORD_ERR_MODEL";
    case CONCORD_ERR_IO: return "CONCORD_ERR_IO";
    case CONCORD_ERR_UNSUPPORTED: return "CONCORD_ERR_UNSUPPORTED";
    case CONCORD_ERR_BACKEND: return "CONCORD_ERR_BACKEND";
    case CONCORD_ERR_INTERNAL: return "CONCORD_ERR_INTERNAL";
    }
    return "(unknown status)";
}

/* `call` must return `expected`; an error must leave a message starting with "<fn>: ". */
static void expect_status(int line, const char *text, concord_status got, concord_status expected,
                          const char *fn) {
    char detail[512];
    ++checks;
    if (got != expected) {
        snprintf(detail, sizeof detail, "returned %s (%d), expected %s", status_name(got),
                 (int)got, status_name(expected));
        fail(line, text, detail);
    }
    if (expected < 0) {
        const char *msg = concord_last_error();
        size_t n = strlen(fn);
        if (msg == NULL || strncmp(msg, fn, n) != 0 || msg[n] != ':' || strlen(msg) < n + 3) {
            snprintf(detail, sizeof detail, "last error does not start with \"%s: \"", fn);
            fail(line, text, detail);
        }
    }
}

#define EXPECT(call, expected, fn) expect_status(__LINE__, #call, (call), (expected), (fn))
#define CHECK(cond)                                                                          \
    do {                                                                                     \
        ++checks;                                                                            \
        if (!(cond)) fail(__LINE__, #cond, "is false");                                      \
    } while (0)

/* Load progress callback: counts its calls, cancels at the first. */
static bool cancel_load(float progress, void *user_data) {
    int *calls = user_data;
    ++*calls;
    return progress < 0.0f; /* always false: progress is in (0, 1] */
}

/* Token callback: stops after `*budget` tokens. */
static bool stop_after(uint32_t token, const char *piece, void *user_data) {
    int *budget = user_data;
    (void)token;
    (void)piece;
    return --*budget > 0;
}

/* Runs a greedy session to the end (ignore_eos, `max_new` tokens) into `out`; its acceptance
 * statistics into `*stats` when `draft_tokens` > 0. Returns the token count. */
static size_t greedy_run(const concord_model *model, const uint32_t *prompt, size_t n_prompt,
                         size_t max_new, uint32_t draft_tokens, uint32_t *out,
                         concord_acceptance_stats *stats) {
    concord_generate_params gp = concord_generate_params_default();
    gp.max_new_tokens = max_new;
    gp.ignore_eos = true;
    gp.speculative_draft_tokens = draft_tokens;
    concord_session *session = NULL;
    EXPECT(concord_session_new(model, prompt, n_prompt, &gp, &session), CONCORD_OK, "");
    size_t n = 0;
    uint32_t token = 0;
    concord_status s;
    while ((s = concord_session_next(session, &token)) == CONCORD_OK && n < max_new) {
        out[n++] = token;
    }
    EXPECT(s, CONCORD_DONE, "");
    if (draft_tokens > 0) {
        EXPECT(concord_session_acceptance(session, stats), CONCORD_OK, "");
    } else {
        EXPECT(concord_session_acceptance(session, stats), CONCORD_ERR_INVALID_ARGUMENT,
               "concord_session_acceptance");
    }
    EXPECT(concord_session_free(session), CONCORD_OK, "");
    return n;
}

/* Speculative decoding with the MTP module: load_mtp, speculative_draft_tokens and
 * concord_session_acceptance, on a fixture without an MTP module
 * (tests/fixtures/v3_grouped_routing) and on the MTP fixture ($CONCORD_MTP_MODEL, else
 * tests/fixtures/mtp_release_layout), both from the repository root. */
static void speculative(const void *foreign) {
    const char *no_mtp = "tests/fixtures/v3_grouped_routing";
    concord_model_params mp = concord_model_default_params();
    CHECK(!mp.load_mtp);
    CHECK(concord_generate_params_default().speculative_draft_tokens == 0);

    /* A model without an MTP module. */
    concord_model *model = (concord_model *)foreign;
    mp.load_mtp = true;
    EXPECT(concord_model_load(no_mtp, &mp, &model), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    CHECK(model == NULL);
    CHECK(strstr(concord_last_error(), "num_nextn_predict_layers") != NULL);
    mp.load_mtp = false;
    EXPECT(concord_model_load(no_mtp, &mp, &model), CONCORD_OK, "");
    uint32_t ids[64];
    size_t n_prompt = 0;
    EXPECT(concord_tokenize(model, "It was the best", true, ids, 64, &n_prompt), CONCORD_OK, "");
    concord_generate_params gp = concord_generate_params_default();
    gp.max_new_tokens = 4;
    gp.speculative_draft_tokens = 1;
    concord_session *session = (concord_session *)foreign;
    EXPECT(concord_session_new(model, ids, n_prompt, &gp, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    CHECK(session == NULL);
    CHECK(strstr(concord_last_error(), "num_nextn_predict_layers") != NULL);
    gp.speculative_draft_tokens = 0;
    EXPECT(concord_session_new(model, ids, n_prompt, &gp, &session), CONCORD_OK, "");
    concord_acceptance_stats stats;
    memset(&stats, 0x55, sizeof stats);
    concord_acceptance_stats untouched = stats;
    EXPECT(concord_session_acceptance(session, &stats), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_acceptance");
    EXPECT(concord_session_acceptance(NULL, &stats), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_acceptance");
    EXPECT(concord_session_acceptance(session, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_acceptance");
    EXPECT(concord_session_acceptance((const concord_session *)foreign, &stats),
           CONCORD_ERR_INVALID_HANDLE, "concord_session_acceptance");
    EXPECT(concord_session_acceptance((const concord_session *)model, &stats),
           CONCORD_ERR_INVALID_HANDLE, "concord_session_acceptance");
    CHECK(memcmp(&stats, &untouched, sizeof stats) == 0);
    EXPECT(concord_session_free(session), CONCORD_OK, "");
    EXPECT(concord_session_acceptance(session, &stats), CONCORD_ERR_INVALID_HANDLE,
           "concord_session_acceptance");
    EXPECT(concord_model_free(model), CONCORD_OK, "");

    /* The MTP fixture: speculative greedy is plain greedy, token for token. */
    const char *dir = getenv("CONCORD_MTP_MODEL");
    if (dir == NULL) dir = "tests/fixtures/mtp_release_layout";
    mp.load_mtp = true;
    EXPECT(concord_model_load(dir, &mp, &model), CONCORD_OK, "");
    EXPECT(concord_tokenize(model, "Call me Ishmael.", true, ids, 64, &n_prompt), CONCORD_OK,
           "");
    gp = concord_generate_params_default();
    gp.speculative_draft_tokens = 17;
    EXPECT(concord_session_new(model, ids, n_prompt, &gp, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    CHECK(strstr(concord_last_error(), "speculative_draft_tokens") != NULL);
    enum { MAX_NEW = 12 };
    uint32_t plain[MAX_NEW], drafted[MAX_NEW];
    CHECK(greedy_run(model, ids, n_prompt, MAX_NEW, 0, plain, &stats) == MAX_NEW);
    for (uint32_t draft_tokens = 1; draft_tokens <= 2; ++draft_tokens) {
        memset(drafted, 0xff, sizeof drafted);
        CHECK(greedy_run(model, ids, n_prompt, MAX_NEW, draft_tokens, drafted, &stats) ==
              MAX_NEW);
        CHECK(memcmp(plain, drafted, sizeof plain) == 0);
        /* The prompt decides the first token; each step its accepted drafts plus one. */
        CHECK(stats.steps >= 1 && stats.accepted <= stats.drafted);
        CHECK(stats.drafted <= draft_tokens * stats.steps);
        CHECK(1 + stats.accepted + stats.steps == MAX_NEW);
        CHECK(stats.mean_accepted_length >= 1.0 &&
              stats.mean_accepted_length <= 1.0 + draft_tokens);
        CHECK(stats.acceptance_rate >= 0.0 && stats.acceptance_rate <= 1.0);
    }
    EXPECT(concord_model_free(model), CONCORD_OK, "");
}

int main(void) {
    const char *demo = concord_demo_model_path();
    const char bad_utf8[] = {'a', (char)0xff, (char)0xfe, 'b', 0};
    int foreign = 42; /* its address is no handle */
    char reason[8];
    uint32_t ids[256];
    size_t n = 0;

    /* Library-level strings. */
    CHECK(concord_version() != NULL && strncmp(concord_version(), "concord ", 8) == 0);
    CHECK(concord_last_error() != NULL);
    CHECK(demo != NULL && demo[0] != 0);

    /* Backends. */
    size_t n_backends = concord_backend_count();
    CHECK(n_backends >= 1);
    CHECK(strcmp(concord_backend_name(0), "cpu") == 0);
    CHECK(concord_backend_name(n_backends) == NULL);
    CHECK(strncmp(concord_last_error(), "concord_backend_name: ", 22) == 0);
    CHECK(concord_backend_name(SIZE_MAX) == NULL);
    EXPECT(concord_backend_probe(NULL, reason, sizeof reason), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_backend_probe");
    EXPECT(concord_backend_probe("no-such-backend", reason, sizeof reason),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_backend_probe");
    EXPECT(concord_backend_probe(bad_utf8, reason, sizeof reason), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_backend_probe");
    memset(reason, 'x', sizeof reason);
    EXPECT(concord_backend_probe("cpu", reason, sizeof reason), CONCORD_OK, "");
    CHECK(reason[0] == 0);
    EXPECT(concord_backend_probe("cpu", NULL, 100), CONCORD_OK, "");
    const char *unavailable = NULL;
    for (size_t i = 0; i < n_backends && unavailable == NULL; ++i) {
        memset(reason, 'x', sizeof reason);
        concord_status s = concord_backend_probe(concord_backend_name(i), reason, sizeof reason);
        if (s == CONCORD_ERR_UNAVAILABLE) {
            unavailable = concord_backend_name(i);
            /* Truncated to 7 bytes and NUL-terminated. */
            CHECK(memchr(reason, 0, sizeof reason) != NULL && strlen(reason) > 0);
            EXPECT(concord_backend_probe(unavailable, reason, 0), CONCORD_ERR_UNAVAILABLE,
                   "concord_backend_probe");
            EXPECT(concord_backend_probe(unavailable, reason, 1), CONCORD_ERR_UNAVAILABLE,
                   "concord_backend_probe");
            CHECK(reason[0] == 0);
        }
    }
    if (unavailable == NULL) fprintf(stderr, "misuse: every backend is available here\n");

    /* Loading. */
    concord_model_params mp = concord_model_default_params();
    concord_model *model = (concord_model *)&foreign; /* must be reset to NULL on failure */
    EXPECT(concord_model_load(NULL, &mp, &model), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    CHECK(model == NULL);
    EXPECT(concord_model_load(demo, NULL, &model), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    EXPECT(concord_model_load(demo, &mp, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    EXPECT(concord_model_load(bad_utf8, &mp, &model), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    EXPECT(concord_model_load("/nonexistent/model/dir", &mp, &model),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_model_load");
    mp.precision = 99;
    EXPECT(concord_model_load(demo, &mp, &model), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    mp = concord_model_default_params();
    mp.backend = "no-such-backend";
    EXPECT(concord_model_load(demo, &mp, &model), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    mp.backend = bad_utf8;
    EXPECT(concord_model_load(demo, &mp, &model), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_load");
    if (unavailable != NULL) {
        mp.backend = unavailable;
        EXPECT(concord_model_load(demo, &mp, &model), CONCORD_ERR_UNAVAILABLE,
               "concord_model_load");
    }
    int load_calls = 0;
    mp = concord_model_default_params();
    mp.progress_callback = cancel_load;
    mp.progress_user_data = &load_calls;
    model = (concord_model *)&foreign;
    EXPECT(concord_model_load(demo, &mp, &model), CONCORD_ERR_CANCELLED, "concord_model_load");
    CHECK(model == NULL);
    CHECK(load_calls == 1);

    mp = concord_model_default_params();
    EXPECT(concord_model_load(demo, &mp, &model), CONCORD_OK, "");
    CHECK(model != NULL);
    size_t n_vocab = 0, max_pos = 0;
    EXPECT(concord_model_n_vocab(model, &n_vocab), CONCORD_OK, "");
    EXPECT(concord_model_max_positions(model, &max_pos), CONCORD_OK, "");
    CHECK(n_vocab > 0 && max_pos > 0);
    EXPECT(concord_model_n_vocab(NULL, &n_vocab), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_n_vocab");
    EXPECT(concord_model_n_vocab(model, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_n_vocab");
    EXPECT(concord_model_max_positions(model, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_model_max_positions");
    EXPECT(concord_model_n_vocab((const concord_model *)&foreign, &n_vocab),
           CONCORD_ERR_INVALID_HANDLE, "concord_model_n_vocab");

    /* Tokenizer. */
    EXPECT(concord_tokenize(NULL, "hi", true, ids, 256, &n), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_tokenize");
    EXPECT(concord_tokenize(model, NULL, true, ids, 256, &n), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_tokenize");
    EXPECT(concord_tokenize(model, "hi", true, ids, 256, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_tokenize");
    EXPECT(concord_tokenize(model, "hi", true, NULL, 256, &n), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_tokenize");
    EXPECT(concord_tokenize(model, bad_utf8, true, ids, 256, &n), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_tokenize");
    EXPECT(concord_tokenize((const concord_model *)&foreign, "hi", true, ids, 256, &n),
           CONCORD_ERR_INVALID_HANDLE, "concord_tokenize");
    size_t aligned[2];
    EXPECT(concord_tokenize(model, "hi", true, ids, 256, (size_t *)((char *)aligned + 1)),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_tokenize");
    const char *text = "It was the best of times,";
    n = 0;
    EXPECT(concord_tokenize(model, text, true, NULL, 0, &n), CONCORD_ERR_BUFFER_TOO_SMALL,
           "concord_tokenize");
    size_t n_prompt = n;
    CHECK(n_prompt >= 2 && n_prompt <= 256);
    ids[0] = 12345;
    EXPECT(concord_tokenize(model, text, true, ids, 1, &n), CONCORD_ERR_BUFFER_TOO_SMALL,
           "concord_tokenize");
    CHECK(n == n_prompt && ids[0] == 12345); /* nothing written */
    EXPECT(concord_tokenize(model, text, true, ids, 256, &n), CONCORD_OK, "");
    CHECK(n == n_prompt);

    char buf[256];
    size_t len = 0;
    EXPECT(concord_detokenize(NULL, ids, n, true, buf, sizeof buf, &len),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_detokenize");
    EXPECT(concord_detokenize(model, NULL, n, true, buf, sizeof buf, &len),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_detokenize");
    EXPECT(concord_detokenize(model, ids, 0, true, buf, sizeof buf, &len),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_detokenize");
    EXPECT(concord_detokenize(model, ids, SIZE_MAX, true, buf, sizeof buf, &len),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_detokenize");
    EXPECT(concord_detokenize(model, ids, SIZE_MAX / 8, true, buf, sizeof buf, &len),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_detokenize");
    EXPECT(concord_detokenize(model, ids, n, true, buf, sizeof buf, NULL),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_detokenize");
    EXPECT(concord_detokenize(model, ids, n, true, NULL, sizeof buf, &len),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_detokenize");
    EXPECT(concord_detokenize(model, ids, n, true, NULL, 0, &len), CONCORD_ERR_BUFFER_TOO_SMALL,
           "concord_detokenize");
    CHECK(len == strlen(text));
    memset(buf, 'x', sizeof buf);
    EXPECT(concord_detokenize(model, ids, n, true, buf, len, &len), CONCORD_ERR_BUFFER_TOO_SMALL,
           "concord_detokenize");
    CHECK(buf[0] == 0); /* one byte short of the NUL: left an empty string */
    EXPECT(concord_detokenize(model, ids, n, true, buf, len + 1, &len), CONCORD_OK, "");
    CHECK(strcmp(buf, text) == 0);

    /* Chat template. */
    concord_chat_message msgs[2] = {{"system", "Be brief."}, {"user", "Hello"}};
    EXPECT(concord_chat_template(NULL, msgs, 2, true, ids, 256, &n),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_chat_template");
    EXPECT(concord_chat_template(model, NULL, 2, true, ids, 256, &n),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_chat_template");
    EXPECT(concord_chat_template(model, msgs, 0, true, ids, 256, &n),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_chat_template");
    EXPECT(concord_chat_template(model, msgs, SIZE_MAX, true, ids, 256, &n),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_chat_template");
    EXPECT(concord_chat_template(model, msgs, 2, true, ids, 256, NULL),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_chat_template");
    concord_chat_message bad_role[1] = {{NULL, "x"}};
    EXPECT(concord_chat_template(model, bad_role, 1, true, ids, 256, &n),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_chat_template");
    concord_chat_message bad_text[1] = {{"user", bad_utf8}};
    EXPECT(concord_chat_template(model, bad_text, 1, true, ids, 256, &n),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_chat_template");
    EXPECT(concord_chat_template(model, msgs, 2, true, NULL, 0, &n),
           CONCORD_ERR_BUFFER_TOO_SMALL, "concord_chat_template");
    CHECK(n > 0 && n <= 256);
    EXPECT(concord_chat_template(model, msgs, 2, true, ids, 256, &n), CONCORD_OK, "");

    /* Sessions: argument checks. */
    EXPECT(concord_tokenize(model, text, true, ids, 256, &n_prompt), CONCORD_OK, "");
    concord_generate_params gp = concord_generate_params_default();
    gp.max_new_tokens = 4;
    concord_session *session = (concord_session *)&foreign;
    EXPECT(concord_session_new(NULL, ids, n_prompt, &gp, &session), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_new");
    CHECK(session == NULL);
    EXPECT(concord_session_new(model, NULL, n_prompt, &gp, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    EXPECT(concord_session_new(model, ids, 0, &gp, &session), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_new");
    EXPECT(concord_session_new(model, ids, SIZE_MAX, &gp, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    EXPECT(concord_session_new(model, ids, max_pos + 1, &gp, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    EXPECT(concord_session_new(model, ids, n_prompt, NULL, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    EXPECT(concord_session_new(model, ids, n_prompt, &gp, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_new");
    EXPECT(concord_session_new((const concord_model *)&foreign, ids, n_prompt, &gp, &session),
           CONCORD_ERR_INVALID_HANDLE, "concord_session_new");
    concord_generate_params bad = gp;
    bad.max_new_tokens = 0;
    EXPECT(concord_session_new(model, ids, n_prompt, &bad, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    bad.max_new_tokens = SIZE_MAX;
    EXPECT(concord_session_new(model, ids, n_prompt, &bad, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    bad = gp;
    bad.temperature = -1.0f;
    EXPECT(concord_session_new(model, ids, n_prompt, &bad, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    bad = gp;
    bad.top_p = 0.0f;
    EXPECT(concord_session_new(model, ids, n_prompt, &bad, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    uint32_t out_of_vocab[2] = {0, (uint32_t)n_vocab};
    EXPECT(concord_session_new(model, out_of_vocab, 2, &gp, &session),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_session_new");
    CHECK(session == NULL);

    /* Sessions: a normal run, then misuse of it. */
    EXPECT(concord_session_new(model, ids, n_prompt, &gp, &session), CONCORD_OK, "");
    CHECK(session != NULL);
    const float *logits = NULL;
    size_t logits_n = 0;
    uint32_t token = 0;
    EXPECT(concord_session_logits(session, &logits, &logits_n), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_logits");
    EXPECT(concord_session_next(NULL, &token), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_next");
    EXPECT(concord_session_next(session, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_next");
    EXPECT(concord_session_next((concord_session *)&foreign, &token), CONCORD_ERR_INVALID_HANDLE,
           "concord_session_next");
    /* A model is not a session, nor a session a model. */
    EXPECT(concord_session_next((concord_session *)model, &token), CONCORD_ERR_INVALID_HANDLE,
           "concord_session_next");
    EXPECT(concord_tokenize((const concord_model *)session, "hi", true, ids + 128, 128, &n),
           CONCORD_ERR_INVALID_HANDLE, "concord_tokenize");
    EXPECT(concord_model_free((concord_model *)session), CONCORD_ERR_INVALID_HANDLE,
           "concord_model_free");
    EXPECT(concord_session_next(session, &token), CONCORD_OK, "");
    CHECK(token < n_vocab);
    EXPECT(concord_session_logits(session, NULL, &logits_n), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_logits");
    EXPECT(concord_session_logits(session, &logits, NULL), CONCORD_ERR_INVALID_ARGUMENT,
           "concord_session_logits");
    EXPECT(concord_session_logits(session, &logits, &logits_n), CONCORD_OK, "");
    CHECK(logits != NULL && logits_n == n_vocab);
    for (size_t i = 0; i < logits_n; ++i) CHECK(logits[i] <= logits[token]); /* greedy */

    /* The session keeps the model alive: free the model first. */
    EXPECT(concord_model_free(model), CONCORD_OK, "");
    int steps = 1;
    concord_status s;
    while ((s = concord_session_next(session, &token)) == CONCORD_OK) ++steps;
    EXPECT(s, CONCORD_DONE, "");
    CHECK(steps >= 1 && steps <= 4);
    EXPECT(concord_session_next(session, &token), CONCORD_DONE, "");

    /* Freed and double-freed handles. */
    EXPECT(concord_tokenize(model, "hi", true, ids, 256, &n), CONCORD_ERR_INVALID_HANDLE,
           "concord_tokenize");
    concord_session *other = NULL;
    EXPECT(concord_session_new(model, ids, n_prompt, &gp, &other), CONCORD_ERR_INVALID_HANDLE,
           "concord_session_new");
    CHECK(other == NULL);
    EXPECT(concord_model_free(model), CONCORD_ERR_INVALID_HANDLE, "concord_model_free");
    concord_session *freed = session;
    session = NULL;
    EXPECT(concord_session_free(freed), CONCORD_OK, "");
    EXPECT(concord_session_free(freed), CONCORD_ERR_INVALID_HANDLE, "concord_session_free");
    EXPECT(concord_session_next(freed, &token), CONCORD_ERR_INVALID_HANDLE,
           "concord_session_next");
    EXPECT(concord_session_logits(freed, &logits, &logits_n), CONCORD_ERR_INVALID_HANDLE,
           "concord_session_logits");
    EXPECT(concord_model_free((concord_model *)&foreign), CONCORD_ERR_INVALID_HANDLE,
           "concord_model_free");
    EXPECT(concord_session_free((concord_session *)&foreign), CONCORD_ERR_INVALID_HANDLE,
           "concord_session_free");
    EXPECT(concord_model_free(NULL), CONCORD_OK, "");
    EXPECT(concord_session_free(NULL), CONCORD_OK, "");

    /* The callback API: cancel from the token callback. */
    EXPECT(concord_model_load(demo, &mp, &model), CONCORD_OK, "");
    gp = concord_generate_params_default();
    gp.max_new_tokens = 8;
    gp.ignore_eos = true;
    int budget = 2;
    EXPECT(concord_generate(model, ids, n_prompt, &gp, NULL, &budget),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_generate");
    EXPECT(concord_generate(model, ids, n_prompt, NULL, stop_after, &budget),
           CONCORD_ERR_INVALID_ARGUMENT, "concord_generate");
    EXPECT(concord_generate((const concord_model *)&foreign, ids, n_prompt, &gp, stop_after,
                            &budget),
           CONCORD_ERR_INVALID_HANDLE, "concord_generate");
    CHECK(budget == 2); /* not called */
    EXPECT(concord_generate(model, ids, n_prompt, &gp, stop_after, &budget),
           CONCORD_ERR_CANCELLED, "concord_generate");
    CHECK(budget == 0); /* called exactly twice */
    budget = 100;
    EXPECT(concord_generate(model, ids, n_prompt, &gp, stop_after, &budget), CONCORD_OK, "");
    CHECK(budget == 100 - 8);
    EXPECT(concord_model_free(model), CONCORD_OK, "");

    speculative(&foreign);

    printf("misuse: %d checks passed\n", checks);
    return 0;
}
