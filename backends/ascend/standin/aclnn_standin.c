/* A test-only stand-in of CANN's operator library (aclnn: the descriptors of libnnopbase and
 * the operators of libopapi) for the Ascend backend's fast-mode plumbing tests. It is NOT
 * Ascend hardware and NOT CANN: it computes on the host CPU and proves nothing about what
 * aclnn computes on a 910B. The tests build it into their temporary directory as
 * `libopapi.so` with `libnnopbase.so` a symbolic link to it (one library, one set of
 * descriptors) and pass both paths to `probe_library_fast`; nothing installs it.
 *
 * What it does, with the same symbols and prototypes as the public headers:
 *   - aclCreateTensor / aclCreateTensorList / aclCreateIntArray make tracked descriptors and
 *     refuse what aclnn refuses: an unknown dtype or format, a null address, strides that do
 *     not match the dims, a view reaching outside its storage shape;
 *   - aclnnMatmul and aclnnGroupedMatmulV2 check shapes, dtypes and every flag in their first
 *     phase (M, K, N agreement, groupType 0, splitItem 2/3, null optional lists, a
 *     non-decreasing group list of one entry per group whose last entry is x's rows), ask for
 *     a workspace, and in the second phase check the workspace and compute with BF16 operands
 *     widened to f32, each dot product accumulated in order k = 0, 1, … in f32 and rounded
 *     to nearest even BF16 — a different (but reasonable) order from Concord's exact
 *     16-lane tree, so fast mode is close to exact, not identical;
 *   - the executor is consumed by the second phase, as aclnn's is;
 *   - `concord_aclnn_standin_runs(kind)` (not an aclnn symbol) counts second phases (1:
 *     aclnnMatmul, 2: aclnnGroupedMatmulV2), so a test can see that aclnn really ran.
 * Failures return ACLNN_ERR_PARAM_INVALID (161002) or ACLNN_ERR_PARAM_NULLPTR (161001) and
 * print the reason to stderr (aclGetRecentErrMsg belongs to the ACL stand-in). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t aclnnStatus;
#define OK 0
#define ERR_NULLPTR 161001
#define ERR_INVALID 161002
#define ACL_FLOAT 0
#define ACL_BF16 27
#define ACL_FORMAT_ND 2
#define MAX_DIMS 8
#define WORKSPACE 256

enum { TENSOR = 0x54454e53, LIST = 0x4c495354, INTS = 0x494e5453, EXEC = 0x45584543 };

typedef struct {
    uint32_t magic;
    uint64_t ndim, nstorage;
    int64_t dims[MAX_DIMS], strides[MAX_DIMS], storage[MAX_DIMS];
    int dtype;
    unsigned char *data;
} aclTensor;

typedef struct {
    uint32_t magic;
    uint64_t n;
    aclTensor **items;
} aclTensorList;

typedef struct {
    uint32_t magic;
    uint64_t n;
    int64_t *values;
} aclIntArray;

enum { MATMUL = 1, GROUPED = 2 };
typedef struct {
    uint32_t magic;
    int kind;
    aclTensor x, w, y;
    int64_t *ends;
    uint64_t groups;
} aclOpExecutor;

static aclnnStatus fail(aclnnStatus code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "aclnn stand-in: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return code;
}

/* ---- libnnopbase: descriptors ---- */

aclTensor *aclCreateTensor(const int64_t *view_dims, uint64_t ndim, int dtype, const int64_t *stride,
                           int64_t offset, int format, const int64_t *storage_dims,
                           uint64_t nstorage, void *data) {
    if (!view_dims || !stride || !storage_dims || !data || ndim == 0 || ndim > MAX_DIMS ||
        nstorage == 0 || nstorage > MAX_DIMS) {
        fail(ERR_NULLPTR, "aclCreateTensor: null array or address, or bad rank");
        return NULL;
    }
    if (dtype != ACL_BF16 && dtype != ACL_FLOAT) {
        fail(ERR_INVALID, "aclCreateTensor: dtype %d not supported", dtype);
        return NULL;
    }
    if (format != ACL_FORMAT_ND || offset < 0) {
        fail(ERR_INVALID, "aclCreateTensor: format %d offset %lld", format, (long long)offset);
        return NULL;
    }
    int64_t storage_len = 1, last = offset;
    for (uint64_t i = 0; i < nstorage; i++) {
        storage_len *= storage_dims[i];
    }
    for (uint64_t i = 0; i < ndim; i++) {
        if (view_dims[i] <= 0 || stride[i] < 0) {
            fail(ERR_INVALID, "aclCreateTensor: dim %llu is %lld, stride %lld",
                 (unsigned long long)i, (long long)view_dims[i], (long long)stride[i]);
            return NULL;
        }
        last += (view_dims[i] - 1) * stride[i];
    }
    if (last >= storage_len) {
        fail(ERR_INVALID, "aclCreateTensor: the view reaches element %lld of a storage of %lld",
             (long long)last, (long long)storage_len);
        return NULL;
    }
    aclTensor *t = calloc(1, sizeof *t);
    t->magic = TENSOR;
    t->ndim = ndim;
    t->nstorage = nstorage;
    memcpy(t->dims, view_dims, ndim * sizeof *view_dims);
    memcpy(t->strides, stride, ndim * sizeof *stride);
    memcpy(t->storage, storage_dims, nstorage * sizeof *storage_dims);
    t->dtype = dtype;
    t->data = (unsigned char *)data + offset * (dtype == ACL_BF16 ? 2 : 4);
    return t;
}

aclnnStatus aclDestroyTensor(const aclTensor *t) {
    if (!t || t->magic != TENSOR) {
        return fail(ERR_INVALID, "aclDestroyTensor: not a live tensor");
    }
    ((aclTensor *)t)->magic = 0;
    free((void *)t);
    return OK;
}

aclIntArray *aclCreateIntArray(const int64_t *values, uint64_t n) {
    if (!values && n) {
        fail(ERR_NULLPTR, "aclCreateIntArray: null values");
        return NULL;
    }
    aclIntArray *a = calloc(1, sizeof *a);
    a->magic = INTS;
    a->n = n;
    a->values = malloc((n ? n : 1) * sizeof *values);
    memcpy(a->values, values, n * sizeof *values);
    return a;
}

aclnnStatus aclDestroyIntArray(const aclIntArray *a) {
    if (!a || a->magic != INTS) {
        return fail(ERR_INVALID, "aclDestroyIntArray: not a live array");
    }
    free(a->values);
    ((aclIntArray *)a)->magic = 0;
    free((void *)a);
    return OK;
}

aclTensorList *aclCreateTensorList(const aclTensor *const *items, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (!items[i] || items[i]->magic != TENSOR) {
            fail(ERR_INVALID, "aclCreateTensorList: item %llu is not a live tensor",
                 (unsigned long long)i);
            return NULL;
        }
    }
    aclTensorList *l = calloc(1, sizeof *l);
    l->magic = LIST;
    l->n = n;
    l->items = malloc((n ? n : 1) * sizeof *items);
    memcpy(l->items, items, n * sizeof *items);
    return l;
}

/* Destroys the list and its tensors (aclDestroyTensorList's documented contract). */
aclnnStatus aclDestroyTensorList(const aclTensorList *l) {
    if (!l || l->magic != LIST) {
        return fail(ERR_INVALID, "aclDestroyTensorList: not a live list");
    }
    for (uint64_t i = 0; i < l->n; i++) {
        aclnnStatus s = aclDestroyTensor(l->items[i]);
        if (s != OK) {
            return s;
        }
    }
    free(l->items);
    ((aclTensorList *)l)->magic = 0;
    free((void *)l);
    return OK;
}

/* ---- arithmetic ---- */

static float bf16_at(const aclTensor *t, int64_t element) {
    uint16_t b;
    memcpy(&b, t->data + 2 * element, 2);
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void store_bf16(const aclTensor *t, int64_t element, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t b;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        b = 0x7fc0;
    } else {
        b = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    memcpy(t->data + 2 * element, &b, 2);
}

/* y[r, n] = Σ_k x[r, k] · w[k, n] for rows r0..r1, in order of k, in f32; `w_base` is the
 * element offset of this group's weight matrix. */
static void rows_times(const aclTensor *x, const aclTensor *w, int64_t w_base, const aclTensor *y,
                       int64_t r0, int64_t r1, int wd) {
    int64_t kk = x->dims[1], nn = y->dims[1];
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t n = 0; n < nn; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < kk; k++) {
                float a = bf16_at(x, r * x->strides[0] + k * x->strides[1]);
                float b = bf16_at(w, w_base + k * w->strides[wd] + n * w->strides[wd + 1]);
                acc = acc + a * b;
            }
            store_bf16(y, r * y->strides[0] + n * y->strides[1], acc);
        }
    }
}

/* ---- libopapi: operators ---- */

static int live(const aclTensor *t, uint64_t rank) {
    return t && t->magic == TENSOR && t->ndim == rank && t->dtype == ACL_BF16;
}

static aclOpExecutor *executor(int kind, const aclTensor *x, const aclTensor *w, const aclTensor *y) {
    aclOpExecutor *e = calloc(1, sizeof *e);
    e->magic = EXEC;
    e->kind = kind;
    e->x = *x;
    e->w = *w;
    e->y = *y;
    return e;
}

aclnnStatus aclnnMatmulGetWorkspaceSize(const aclTensor *self, const aclTensor *mat2, aclTensor *out,
                                        int8_t cube_math_type, uint64_t *workspace_size,
                                        aclOpExecutor **exec) {
    if (!workspace_size || !exec) {
        return fail(ERR_NULLPTR, "aclnnMatmulGetWorkspaceSize: null out-pointer");
    }
    if (!live(self, 2) || !live(mat2, 2) || !live(out, 2)) {
        return fail(ERR_INVALID, "aclnnMatmulGetWorkspaceSize: self, mat2, out must be live 2-d "
                                 "BF16 tensors (this stand-in takes BF16 only)");
    }
    if (cube_math_type < 0 || cube_math_type > 3) {
        return fail(ERR_INVALID, "aclnnMatmulGetWorkspaceSize: cubeMathType %d", cube_math_type);
    }
    if (self->dims[1] != mat2->dims[0] || out->dims[0] != self->dims[0] ||
        out->dims[1] != mat2->dims[1]) {
        return fail(ERR_INVALID,
                    "aclnnMatmulGetWorkspaceSize: [%lld, %lld] @ [%lld, %lld] -> [%lld, %lld]",
                    (long long)self->dims[0], (long long)self->dims[1], (long long)mat2->dims[0],
                    (long long)mat2->dims[1], (long long)out->dims[0], (long long)out->dims[1]);
    }
    *workspace_size = WORKSPACE;
    *exec = executor(MATMUL, self, mat2, out);
    return OK;
}

static aclnnStatus second_phase(const char *call, int kind, void *workspace, uint64_t size,
                                aclOpExecutor *e, void *stream) {
    if (!e || e->magic != EXEC || e->kind != kind) {
        return fail(ERR_INVALID, "%s: not an executor of this operator", call);
    }
    if (!workspace || size != WORKSPACE) {
        return fail(ERR_INVALID, "%s: workspace %p of %llu bytes, %d asked for", call, workspace,
                    (unsigned long long)size, WORKSPACE);
    }
    if (!stream) {
        return fail(ERR_NULLPTR, "%s: null stream", call);
    }
    return OK;
}

/* Second phases run so far, by operator (MATMUL, GROUPED): the tests read them to see that
 * fast mode really went through aclnn (a stand-in extra, not an aclnn symbol). */
static uint64_t runs[3];

uint64_t concord_aclnn_standin_runs(int kind) {
    return kind == MATMUL || kind == GROUPED ? __atomic_load_n(&runs[kind], __ATOMIC_SEQ_CST) : 0;
}

static void release(aclOpExecutor *e) {
    __atomic_add_fetch(&runs[e->kind], 1, __ATOMIC_SEQ_CST);
    free(e->ends);
    e->magic = 0;
    free(e);
}

aclnnStatus aclnnMatmul(void *workspace, uint64_t size, aclOpExecutor *e, void *stream) {
    aclnnStatus s = second_phase("aclnnMatmul", MATMUL, workspace, size, e, stream);
    if (s != OK) {
        return s;
    }
    rows_times(&e->x, &e->w, 0, &e->y, 0, e->x.dims[0], 0);
    release(e);
    return OK;
}

aclnnStatus aclnnGroupedMatmulV2GetWorkspaceSize(
    const aclTensorList *x, const aclTensorList *weight, const aclTensorList *bias,
    const aclTensorList *scale, const aclTensorList *offset, const aclTensorList *antiquant_scale,
    const aclTensorList *antiquant_offset, const aclIntArray *group_list, int64_t split_item,
    int64_t group_type, const aclTensorList *y, uint64_t *workspace_size, aclOpExecutor **exec) {
    const char *call = "aclnnGroupedMatmulV2GetWorkspaceSize";
    if (!workspace_size || !exec) {
        return fail(ERR_NULLPTR, "%s: null out-pointer", call);
    }
    if (bias || scale || offset || antiquant_scale || antiquant_offset) {
        return fail(ERR_INVALID, "%s: this stand-in takes no bias or quantization", call);
    }
    if (group_type != 0 || (split_item != 2 && split_item != 3)) {
        return fail(ERR_INVALID, "%s: groupType %lld splitItem %lld (stand-in: 0 and 2/3)", call,
                    (long long)group_type, (long long)split_item);
    }
    if (!x || x->magic != LIST || x->n != 1 || !weight || weight->magic != LIST ||
        weight->n != 1 || !y || y->magic != LIST || y->n != 1) {
        return fail(ERR_INVALID, "%s: x, weight, y must be lists of one tensor", call);
    }
    const aclTensor *xt = x->items[0], *wt = weight->items[0], *yt = y->items[0];
    if (!live(xt, 2) || !live(wt, 3) || !live(yt, 2)) {
        return fail(ERR_INVALID, "%s: x [M,K], weight [G,K,N], y [M,N], all BF16", call);
    }
    int64_t g = wt->dims[0];
    if (xt->dims[1] != wt->dims[1] || yt->dims[1] != wt->dims[2] || yt->dims[0] != xt->dims[0]) {
        return fail(ERR_INVALID, "%s: x [%lld,%lld], weight [%lld,%lld,%lld], y [%lld,%lld]",
                    call, (long long)xt->dims[0], (long long)xt->dims[1], (long long)g,
                    (long long)wt->dims[1], (long long)wt->dims[2], (long long)yt->dims[0],
                    (long long)yt->dims[1]);
    }
    if (!group_list || group_list->magic != INTS || group_list->n != (uint64_t)g || g < 2) {
        return fail(ERR_INVALID, "%s: the group list needs one entry per group (%lld), at least 2",
                    call, (long long)g);
    }
    for (int64_t i = 0; i < g; i++) {
        int64_t prev = i ? group_list->values[i - 1] : 0;
        if (group_list->values[i] < prev) {
            return fail(ERR_INVALID, "%s: group list decreases at %lld", call, (long long)i);
        }
    }
    if (group_list->values[g - 1] != xt->dims[0]) {
        return fail(ERR_INVALID, "%s: the group list ends at %lld, x has %lld rows", call,
                    (long long)group_list->values[g - 1], (long long)xt->dims[0]);
    }
    aclOpExecutor *e = executor(GROUPED, xt, wt, yt);
    e->groups = (uint64_t)g;
    e->ends = malloc(g * sizeof *e->ends);
    memcpy(e->ends, group_list->values, g * sizeof *e->ends);
    *workspace_size = WORKSPACE;
    *exec = e;
    return OK;
}

aclnnStatus aclnnGroupedMatmulV2(void *workspace, uint64_t size, aclOpExecutor *e, void *stream) {
    aclnnStatus s = second_phase("aclnnGroupedMatmulV2", GROUPED, workspace, size, e, stream);
    if (s != OK) {
        return s;
    }
    for (uint64_t g = 0; g < e->groups; g++) {
        int64_t r0 = g ? e->ends[g - 1] : 0;
        rows_times(&e->x, &e->w, (int64_t)g * e->w.strides[0], &e->y, r0, e->ends[g], 1);
    }
    release(e);
    return OK;
}
