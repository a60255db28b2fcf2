/* A test-only stand-in of the ACL C API (libascendcl + aclrtc), for the Ascend backend's
 * plumbing tests. It is NOT Ascend hardware and NOT CANN: it runs nothing on an NPU and proves
 * nothing about Ascend numerics. It is built by the tests into their temporary directory,
 * never installed, and never found by the normal probe (its file name is not libascendcl.so;
 * the tests pass its path to `probe_library`).
 *
 * What it does, with the same symbols and signatures as the real library:
 *   - device memory is host memory, tracked in a table; copies are checked against it;
 *   - streams are tokens and launches run at once (so synchronising is a check of the handle);
 *   - aclrtc "compiles" the program source with the host C compiler through the same Ascend
 *     prelude, with its CPU mapping (`-DCONCORD_ASCEND_CPU`), in the spirit of Ascend C's CPU
 *     debug mode: `cc -shared -fPIC -O1 -ffp-contract=off`; the "binary" is the shared object;
 *   - loading a binary is dlopen; a launch calls the kernel's CPU trampoline once per block
 *     index with the packed argument block.
 * It rejects what a real device would: unknown or freed handles, copies outside an
 * allocation, a launch whose argument count or sizes differ from the kernel's parameter list,
 * a pointer argument that is not device memory, a compile without --npu-arch.
 *
 * Test knobs (environment): CONCORD_ACL_STANDIN_FAIL_INIT=1 makes aclInit fail,
 * CONCORD_ACL_STANDIN_DEVICES=<n> sets the device count (default 1),
 * CONCORD_ACL_STANDIN_CC names the C compiler (default cc). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int aclError;
#define ACL_SUCCESS 0
#define ACL_ERROR_INVALID_PARAM 100000
#define ACL_ERROR_UNINITIALIZE 100001
#define ACL_ERROR_INVALID_DEVICE 107001
#define ACL_ERROR_BAD_ALLOC 200000
#define ACL_ERROR_RTC_COMPILATION 300000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread char recent[1024];
static int initialised;
static int current_device = -1;

static aclError fail(aclError code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(recent, sizeof recent, fmt, ap);
    va_end(ap);
    return code;
}

const char *aclGetRecentErrMsg(void) { return recent[0] ? recent : NULL; }

static int device_count(void) {
    const char *v = getenv("CONCORD_ACL_STANDIN_DEVICES");
    return v ? atoi(v) : 1;
}

aclError aclInit(const char *config) {
    (void)config;
    const char *v = getenv("CONCORD_ACL_STANDIN_FAIL_INIT");
    if (v && v[0] == '1') {
        return fail(ACL_ERROR_UNINITIALIZE, "stand-in: aclInit told to fail");
    }
    initialised = 1;
    return ACL_SUCCESS;
}

aclError aclFinalize(void) { return ACL_SUCCESS; }

aclError aclrtGetVersion(int32_t *major, int32_t *minor, int32_t *patch) {
    *major = 0;
    *minor = 0;
    *patch = 0;
    return ACL_SUCCESS;
}

aclError aclrtGetDeviceCount(uint32_t *count) {
    if (!initialised) {
        return fail(ACL_ERROR_UNINITIALIZE, "stand-in: aclrtGetDeviceCount before aclInit");
    }
    *count = (uint32_t)device_count();
    return ACL_SUCCESS;
}

aclError aclrtSetDevice(int32_t device) {
    if (!initialised || device < 0 || device >= device_count()) {
        return fail(ACL_ERROR_INVALID_DEVICE, "stand-in: no device %d", device);
    }
    current_device = device;
    return ACL_SUCCESS;
}

const char *aclrtGetSocName(void) { return current_device >= 0 ? "Ascend910B3" : NULL; }

/* A 64 GiB device of which 4 GiB are taken by others; what this process holds is the sum of
 * its live allocations (below), so free memory falls as a real device's does. */
#define STANDIN_TOTAL ((size_t)64 << 30)
#define STANDIN_OTHERS ((size_t)4 << 30)
static size_t allocated_bytes(void);

aclError aclrtGetMemInfo(int attr, size_t *free_bytes, size_t *total) {
    if (current_device < 0) {
        return fail(ACL_ERROR_INVALID_DEVICE, "stand-in: aclrtGetMemInfo without a device");
    }
    (void)attr;
    size_t usable = STANDIN_TOTAL - STANDIN_OTHERS, held = allocated_bytes();
    *free_bytes = usable - (held < usable ? held : usable);
    *total = STANDIN_TOTAL;
    return ACL_SUCCESS;
}

/* ---- device memory ---- */

struct alloc {
    unsigned char *base;
    size_t len;
};
static struct alloc *allocs;
static size_t n_allocs, cap_allocs;

/* The allocation holding [p, p + len), or NULL. Called with the lock held. */
static struct alloc *find_range(const void *p, size_t len) {
    const unsigned char *q = p;
    for (size_t i = 0; i < n_allocs; i++) {
        struct alloc *a = &allocs[i];
        if (q >= a->base && q <= a->base + a->len && len <= (size_t)(a->base + a->len - q)) {
            return a;
        }
    }
    return NULL;
}

static size_t allocated_bytes(void) {
    pthread_mutex_lock(&lock);
    size_t sum = 0;
    for (size_t i = 0; i < n_allocs; i++) {
        sum += allocs[i].len;
    }
    pthread_mutex_unlock(&lock);
    return sum;
}

aclError aclrtMalloc(void **ptr, size_t size, int policy) {
    (void)policy;
    if (current_device < 0) {
        return fail(ACL_ERROR_INVALID_DEVICE, "stand-in: aclrtMalloc without aclrtSetDevice");
    }
    if (size == 0 || ptr == NULL) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtMalloc of 0 bytes");
    }
    unsigned char *p = malloc(size);
    if (!p) {
        return fail(ACL_ERROR_BAD_ALLOC, "stand-in: out of memory for %zu bytes", size);
    }
    pthread_mutex_lock(&lock);
    if (n_allocs == cap_allocs) {
        cap_allocs = cap_allocs ? 2 * cap_allocs : 64;
        allocs = realloc(allocs, cap_allocs * sizeof *allocs);
    }
    allocs[n_allocs++] = (struct alloc){p, size};
    pthread_mutex_unlock(&lock);
    *ptr = p;
    return ACL_SUCCESS;
}

aclError aclrtFree(void *ptr) {
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_allocs; i++) {
        if (allocs[i].base == ptr) {
            free(ptr);
            allocs[i] = allocs[--n_allocs];
            pthread_mutex_unlock(&lock);
            return ACL_SUCCESS;
        }
    }
    pthread_mutex_unlock(&lock);
    return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtFree of %p, not a live allocation", ptr);
}

aclError aclrtMemcpy(void *dst, size_t dest_max, const void *src, size_t count, int kind) {
    if (count > dest_max) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtMemcpy of %zu bytes into %zu", count,
                    dest_max);
    }
    const void *device = kind == 1 ? dst : kind == 2 ? src : NULL;
    if (device == NULL) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtMemcpy kind %d not supported", kind);
    }
    pthread_mutex_lock(&lock);
    struct alloc *a = find_range(device, count);
    struct alloc *a_max = kind == 1 ? find_range(dst, dest_max) : a;
    pthread_mutex_unlock(&lock);
    if (!a || !a_max) {
        return fail(ACL_ERROR_INVALID_PARAM,
                    "stand-in: aclrtMemcpy kind %d: %p + %zu (destMax %zu) is outside every "
                    "device allocation",
                    kind, device, count, dest_max);
    }
    memcpy(dst, src, count);
    return ACL_SUCCESS;
}

/* ---- handles: streams, programs, binaries, functions, argument lists ---- */

enum { STREAM = 0x5354524d, PROG = 0x50524f47, BIN = 0x42494e21, FUNC = 0x46554e43, ARGS = 0x41524753 };

#define MAX_HANDLES 4096
static void *handles[MAX_HANDLES];
static int handle_kinds[MAX_HANDLES];

static void track(void *h, int kind) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_HANDLES; i++) {
        if (!handles[i]) {
            handles[i] = h;
            handle_kinds[i] = kind;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}
static int known(const void *h, int kind) {
    int found = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_HANDLES && !found; i++) {
        found = h && handles[i] == h && handle_kinds[i] == kind;
    }
    pthread_mutex_unlock(&lock);
    return found;
}
static void untrack(const void *h) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_HANDLES; i++) {
        if (handles[i] == h) {
            handles[i] = NULL;
        }
    }
    pthread_mutex_unlock(&lock);
}

aclError aclrtCreateStream(void **stream) {
    if (current_device < 0) {
        return fail(ACL_ERROR_INVALID_DEVICE, "stand-in: aclrtCreateStream without a device");
    }
    *stream = malloc(1);
    track(*stream, STREAM);
    return ACL_SUCCESS;
}
aclError aclrtSynchronizeStream(void *stream) {
    return known(stream, STREAM) ? ACL_SUCCESS
                                 : fail(ACL_ERROR_INVALID_PARAM, "stand-in: unknown stream %p", stream);
}
aclError aclrtDestroyStream(void *stream) {
    if (!known(stream, STREAM)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: destroying unknown stream %p", stream);
    }
    untrack(stream);
    free(stream);
    return ACL_SUCCESS;
}

/* ---- aclrtc: the host C compiler through the prelude's CPU mapping ---- */

struct prog {
    char *source;
    char *log;
    unsigned char *bin;
    size_t bin_len;
};

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    *len = got;
    return buf;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    size_t put = fwrite(data, 1, len, f);
    fclose(f);
    return put == len ? 0 : -1;
}

static int make_dir(char *out, size_t cap) {
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/concord-acl-standin-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    return mkdtemp(out) ? 0 : -1;
}

aclError aclrtcCreateProg(void **prog, const char *src, const char *name, int num_headers,
                          const char **headers, const char **include_names) {
    (void)name;
    (void)headers;
    (void)include_names;
    if (!prog || !src || num_headers != 0) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtcCreateProg: bad arguments");
    }
    struct prog *p = calloc(1, sizeof *p);
    p->source = strdup(src);
    track(p, PROG);
    *prog = p;
    return ACL_SUCCESS;
}

aclError aclrtcCompileProg(void *prog, int num_options, const char **options) {
    if (!known(prog, PROG)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: unknown aclrtcProg %p", prog);
    }
    struct prog *p = prog;
    int has_arch = 0;
    for (int i = 0; i < num_options; i++) {
        has_arch |= strncmp(options[i], "--npu-arch=dav-", 15) == 0;
    }
    if (!has_arch) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtcCompileProg without --npu-arch");
    }
    char dir[512], src[600], so[600], log[600], cmd[2400];
    if (make_dir(dir, sizeof dir) != 0) {
        return fail(ACL_ERROR_RTC_COMPILATION, "stand-in: no temporary directory");
    }
    snprintf(src, sizeof src, "%s/program.c", dir);
    snprintf(so, sizeof so, "%s/program.so", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_file(src, p->source, strlen(p->source));
    const char *cc = getenv("CONCORD_ACL_STANDIN_CC");
    snprintf(cmd, sizeof cmd,
             "%s -x c -std=gnu11 -shared -fPIC -O1 -ffp-contract=off -fno-fast-math "
             "-DCONCORD_ASCEND_CPU -o '%s' '%s' -lm > '%s' 2>&1",
             cc && cc[0] ? cc : "cc", so, src, log);
    int status = system(cmd);
    size_t len = 0;
    free(p->log);
    p->log = read_file(log, &len);
    if (status == 0) {
        free(p->bin);
        p->bin = (unsigned char *)read_file(so, &p->bin_len);
    }
    unlink(src);
    unlink(so);
    unlink(log);
    rmdir(dir);
    if (status != 0 || !p->bin) {
        return fail(ACL_ERROR_RTC_COMPILATION,
                    "stand-in: the host C compiler failed (system() status %d, binary %s)", status,
                    p->bin ? "read" : "missing");
    }
    return ACL_SUCCESS;
}

aclError aclrtcGetBinDataSize(void *prog, size_t *size) {
    struct prog *p = prog;
    if (!known(prog, PROG) || !p->bin) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: no compiled binary in %p", prog);
    }
    *size = p->bin_len;
    return ACL_SUCCESS;
}
aclError aclrtcGetBinData(void *prog, char *out) {
    struct prog *p = prog;
    if (!known(prog, PROG) || !p->bin) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: no compiled binary in %p", prog);
    }
    memcpy(out, p->bin, p->bin_len);
    return ACL_SUCCESS;
}
aclError aclrtcGetCompileLogSize(void *prog, size_t *size) {
    struct prog *p = prog;
    if (!known(prog, PROG)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: unknown aclrtcProg %p", prog);
    }
    *size = p->log ? strlen(p->log) + 1 : 1;
    return ACL_SUCCESS;
}
aclError aclrtcGetCompileLog(void *prog, char *out) {
    struct prog *p = prog;
    if (!known(prog, PROG)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: unknown aclrtcProg %p", prog);
    }
    strcpy(out, p->log ? p->log : "");
    return ACL_SUCCESS;
}
aclError aclrtcDestroyProg(void **prog) {
    if (!prog || !known(*prog, PROG)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: destroying an unknown aclrtcProg");
    }
    struct prog *p = *prog;
    untrack(p);
    free(p->source);
    free(p->log);
    free(p->bin);
    free(p);
    *prog = NULL;
    return ACL_SUCCESS;
}

/* ---- binaries, functions, launches ---- */

typedef void (*trampoline)(const unsigned char *args, uint32_t block_idx, uint32_t block_num);

struct binary {
    void *dl;
};
struct func {
    struct binary *bin;
    char name[128];
    trampoline run;
    const char *signature;
};
#define MAX_ARGS 64
struct args {
    struct func *f;
    unsigned char data[MAX_ARGS * 8];
    size_t used;
    size_t sizes[MAX_ARGS];
    size_t offsets[MAX_ARGS];
    int count;
    int finalized;
};

aclError aclrtBinaryLoadFromData(const void *data, size_t length, const void *options,
                                 void **bin_handle) {
    (void)options;
    if (!data || length == 0 || !bin_handle) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtBinaryLoadFromData: no data");
    }
    char dir[512], so[600];
    if (make_dir(dir, sizeof dir) != 0) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: no temporary directory");
    }
    snprintf(so, sizeof so, "%s/binary.so", dir);
    write_file(so, data, length);
    void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    unlink(so);
    rmdir(dir);
    if (!dl) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: the binary does not load: %s", dlerror());
    }
    struct binary *b = calloc(1, sizeof *b);
    b->dl = dl;
    track(b, BIN);
    *bin_handle = b;
    return ACL_SUCCESS;
}

aclError aclrtBinaryGetFunction(void *bin_handle, const char *name, void **func_handle) {
    if (!known(bin_handle, BIN)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: unknown binary %p", bin_handle);
    }
    struct binary *b = bin_handle;
    char sym[200];
    snprintf(sym, sizeof sym, "%s__concord_cpu", name);
    trampoline run = (trampoline)dlsym(b->dl, sym);
    snprintf(sym, sizeof sym, "%s__concord_signature", name);
    const char *signature = dlsym(b->dl, sym);
    if (!dlsym(b->dl, name) || !run || !signature || strlen(name) >= 128) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: no kernel %s in the binary", name);
    }
    struct func *f = calloc(1, sizeof *f);
    f->bin = b;
    strcpy(f->name, name);
    f->run = run;
    f->signature = signature;
    track(f, FUNC);
    *func_handle = f;
    return ACL_SUCCESS;
}

aclError aclrtBinaryUnLoad(void *bin_handle) {
    if (!known(bin_handle, BIN)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: unloading unknown binary %p", bin_handle);
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_HANDLES; i++) {
        if (handles[i] && handle_kinds[i] == FUNC && ((struct func *)handles[i])->bin == bin_handle) {
            free(handles[i]);
            handles[i] = NULL;
        }
    }
    pthread_mutex_unlock(&lock);
    struct binary *b = bin_handle;
    untrack(b);
    dlclose(b->dl);
    free(b);
    return ACL_SUCCESS;
}

aclError aclrtKernelArgsInit(void *func_handle, void **args_handle) {
    if (!known(func_handle, FUNC)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: aclrtKernelArgsInit: unknown function %p",
                    func_handle);
    }
    struct args *a = calloc(1, sizeof *a);
    a->f = func_handle;
    track(a, ARGS);
    *args_handle = a;
    return ACL_SUCCESS;
}

aclError aclrtKernelArgsAppend(void *args_handle, void *param, size_t size, void **param_handle) {
    struct args *a = args_handle;
    if (!known(a, ARGS) || a->finalized) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: appending to an unknown or final list");
    }
    if (!param || size == 0 || size > 8 || a->count == MAX_ARGS) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: bad argument of %zu bytes", size);
    }
    size_t at = (a->used + size - 1) / size * size;
    memcpy(a->data + at, param, size);
    a->offsets[a->count] = at;
    a->sizes[a->count++] = size;
    a->used = at + size;
    if (param_handle) {
        *param_handle = a->data + at;
    }
    return ACL_SUCCESS;
}

aclError aclrtKernelArgsFinalize(void *args_handle) {
    struct args *a = args_handle;
    if (!known(a, ARGS) || a->finalized) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: finalizing an unknown or final list");
    }
    a->finalized = 1;
    return ACL_SUCCESS;
}

/* Checks the packed arguments against the kernel's parameter list (its signature string: p
 * pointer, q u64, u u32, f float) and every pointer against device memory. */
static aclError check_args(const struct args *a) {
    const struct func *f = a->f;
    int want = (int)strlen(f->signature);
    if (a->count != want) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: kernel %s takes %d arguments, got %d",
                    f->name, want, a->count);
    }
    for (int i = 0; i < want; i++) {
        char k = f->signature[i];
        size_t size = (k == 'p' || k == 'q') ? 8 : 4;
        if (a->sizes[i] != size) {
            return fail(ACL_ERROR_INVALID_PARAM,
                        "stand-in: kernel %s argument %d is %zu bytes, the parameter %zu", f->name,
                        i, a->sizes[i], size);
        }
        if (k == 'p') {
            void *ptr;
            memcpy(&ptr, a->data + a->offsets[i], 8);
            pthread_mutex_lock(&lock);
            struct alloc *in = find_range(ptr, 1);
            pthread_mutex_unlock(&lock);
            if (!in) {
                return fail(ACL_ERROR_INVALID_PARAM,
                            "stand-in: kernel %s argument %d (%p) is not device memory", f->name,
                            i, ptr);
            }
        }
    }
    return ACL_SUCCESS;
}

aclError aclrtLaunchKernelWithConfig(void *func_handle, uint32_t block_dim, void *stream,
                                     void *cfg, void *args_handle, void *reserve) {
    (void)cfg;
    if (!known(func_handle, FUNC) || !known(stream, STREAM) || !known(args_handle, ARGS)) {
        return fail(ACL_ERROR_INVALID_PARAM, "stand-in: launch with an unknown handle");
    }
    struct args *a = args_handle;
    if (a->f != func_handle || !a->finalized || reserve != NULL || block_dim == 0) {
        return fail(ACL_ERROR_INVALID_PARAM,
                    "stand-in: launch of %s: argument list of another kernel, not finalized, "
                    "reserve set or block dim 0",
                    ((struct func *)func_handle)->name);
    }
    aclError e = check_args(a);
    if (e == ACL_SUCCESS) {
        for (uint32_t b = 0; b < block_dim; b++) {
            a->f->run(a->data, b, block_dim);
        }
    }
    untrack(a);
    free(a);
    return e;
}
