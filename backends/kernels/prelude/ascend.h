/* Prelude for Ascend C through aclrtc (CANN's runtime compiler): what the shared kernels need
 * from the dialect.
 *
 * The shared kernels are SIMT-style: one call per work-item, `GLOBAL_ID()` its index. An AI
 * core runs one block of scalar code, so here every `KERNEL` becomes a per-item device
 * function taking its item index first (the Ascend backend renames `KERNEL name(` to
 * `KERNEL name__item(u64 concord_item, `), and the backend appends one entry point per kernel,
 * `ENTRY name(<the kernel's parameters>, u64 concord_items)`, that walks the items
 * `BLOCK_IDX(), BLOCK_IDX() + BLOCK_NUM(), ...` below `concord_items` and calls the per-item
 * function. The block dim the host launches with therefore never changes a result.
 *
 * Exact kernels only: there are no work-groups, so `LOCAL_ID()` is 0, `LOCAL_SIZE()` is 1, and
 * the work-group barrier and shared arrays (the fast tiles) do not compile here.
 *
 * Numerics: compiled without fast-math and with contraction off (`-ffp-contract=off`, see
 * docs/numerics.md for which options aclrtc is given and what is assumed), so f32 + - * /
 * and sqrt are the IEEE operations of the contract. BF16 and FP8 are stored as u16/u8 and
 * converted in software by common/convert.h and common/fp8.h (A2/A3 have no FP8).
 *
 * `CONCORD_ASCEND_CPU` selects the CPU mapping of the qualifiers, in the spirit of Ascend C's
 * CPU debug mode: the test-only stand-in of the ACL API (backends/ascend/standin, a plumbing
 * test, not Ascend hardware) compiles the very same source with the host C compiler. Nothing
 * else defines it. */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;

#ifdef CONCORD_ASCEND_CPU
/* Host C: no address-space qualifiers, the block index and dim set by the stand-in's launch
 * trampoline before it calls an entry point. */
#define ENTRY void
#define FN static inline
#define GLOBAL
static u32 concord_block_idx;
static u32 concord_block_num;
#define BLOCK_IDX() ((u64)concord_block_idx)
#define BLOCK_NUM() ((u64)concord_block_num)
#define FLOOR_F32(x) __builtin_floorf(x)
#define SQRT_F32(x) __builtin_sqrtf(x)
#else
/* Ascend C (ccec through aclrtc): entry points are `extern "C" __global__ __aicore__`, global
 * memory pointers carry `__gm__`, helpers run on the AI core's scalar unit. */
#define ENTRY extern "C" __global__ __aicore__ void
#define FN static __aicore__ inline
#define GLOBAL __gm__
#define BLOCK_IDX() ((u64)get_block_idx())
#define BLOCK_NUM() ((u64)get_block_num())
#define FLOOR_F32(x) __builtin_floorf(x)
#define SQRT_F32(x) __builtin_sqrtf(x)
#endif

/* A kernel of the shared source: a per-item function (see above). */
#define KERNEL FN void
#define LOCAL
#define GLOBAL_ID() ((u64)concord_item)
#define GROUP_ID() ((u64)concord_item)
#define LOCAL_ID() 0u
#define LOCAL_SIZE() 1u
/* Work-group sharing does not exist on this mapping: a kernel using it fails to compile,
 * naming why. */
#define LOCAL_ARRAY(type, name, n) type name[n] = concord_ascend_has_no_work_group_memory
#define BARRIER() concord_ascend_has_no_work_group_barrier()
#define UNROLL

/* Exact bit casts through a union (both dialects are C-family with the same f32/u32 sizes). */
FN u32 concord_f32_bits(float x) {
    union {
        float f;
        u32 u;
    } v;
    v.f = x;
    return v.u;
}
FN float concord_bits_f32(u32 u) {
    union {
        float f;
        u32 u;
    } v;
    v.u = u;
    return v.f;
}
#define F32_BITS(x) concord_f32_bits(x)
#define BITS_F32(u) concord_bits_f32((u32)(u))

/* Compare-and-swap on the status words (common/error.h). The items of one block run in order
 * on one core; across cores this read-compare-write is not atomic, so when two blocks find an
 * error at once either may be the one reported (an error is still reported). */
FN u32 concord_cas_u32(GLOBAL u32 *p, u32 cmp, u32 val) {
    u32 old = *p;
    if (old == cmp) {
        *p = val;
    }
    return old;
}
#define ATOMIC_CAS_U32(p, cmp, val) concord_cas_u32((GLOBAL u32 *)(p), (cmp), (val))
