/* concord_model_load on one directory, as a C host embedding libconcord would call it: prints
 * the status and message, frees the model, exits 0 for success and 1 for a clean error. Any
 * other ending (a signal, an abort) is what tools/fuzz/mutate_model_dirs.py --via ffi hunts for.
 *
 *   gcc -std=c11 -Iffi/include tools/fuzz/load_model.c -Ltarget/release -lconcord \
 *       -Wl,-rpath,target/release -o target/load_model
 */
#include <stdio.h>

#include "concord.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: load_model DIR\n");
        return 2;
    }
    concord_model_params params = {0};
    params.backend = "cpu";
    params.precision = CONCORD_PRECISION_NATIVE;
    concord_model *model = NULL;
    concord_status status = concord_model_load(argv[1], &params, &model);
    if (status != CONCORD_OK) {
        fprintf(stderr, "error %d: %s\n", (int)status, concord_last_error());
        return model == NULL ? 1 : 3;
    }
    concord_model_free(model);
    return 0;
}
