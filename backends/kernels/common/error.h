/* Data-dependent errors (an id or position out of range) found by a kernel. The host passes
 * one status buffer of 4 u32: [code, value, limit, unused]; the first error wins and the host
 * reports it at its next synchronize or read. The codes match backends' `KernelError`. */

#define ERR_NONE 0u
#define ERR_EMBEDDING_ID 1u
#define ERR_ROPE_POSITION 2u
#define ERR_MOE_EXPERT_ID 3u
#define ERR_SCATTER_SLOT 4u
#define ERR_GATHER_ROW 5u

FN void report_error(GLOBAL u32 *status, u32 code, u32 value, u32 limit) {
    if (ATOMIC_CAS_U32(status, ERR_NONE, code) == ERR_NONE) {
        status[1] = value;
        status[2] = limit;
    }
}
