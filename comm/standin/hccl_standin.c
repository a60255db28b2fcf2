/*
 * A test-only stand-in for libhccl: the entry points Concord's HCCL transport calls
 * (prototypes of CANN's public inc/hccl/hccl.h and hccl_types.h) over the shared rendezvous
 * core (standin_core.h: ranks as threads of one process, host memory as "device" memory; its
 * comment gives the stream and error model). HcclAlltoAllV is its parts as sends and
 * receives; HcclBarrier a zero-byte round.
 *
 * Built by the tests with the host C compiler (concord_comm::standin::build_hccl); never
 * installed and never named libhccl.so, so no library search finds it.
 */
#include <stdint.h>

typedef int HcclResult;
typedef int HcclDataType;
enum {
    HCCL_SUCCESS = 0,
    HCCL_E_PARA = 1,
    HCCL_E_INTERNAL = 4,
};
#define HCCL_ROOT_INFO_BYTES 4108
#define STANDIN_OK HCCL_SUCCESS
#define STANDIN_INVALID_ARGUMENT HCCL_E_PARA
#define STANDIN_INVALID_USAGE HCCL_E_INTERNAL
#define STANDIN_ID_BYTES HCCL_ROOT_INFO_BYTES
#include "standin_core.h"

typedef struct { char internal[HCCL_ROOT_INFO_BYTES]; } HcclRootInfo;

/* hccl_types.h: INT8, INT16, INT32, FP16, FP32, INT64, UINT64, UINT8, UINT16, UINT32, FP64,
 * BFP16. */
static size_t type_size(HcclDataType type) {
    static const size_t sizes[] = {1, 2, 4, 2, 4, 8, 8, 1, 2, 4, 8, 2};
    return type >= 0 && type < 12 ? sizes[type] : 0;
}

const char *HcclGetErrorString(HcclResult code) {
    switch (code) {
    case HCCL_SUCCESS: return "success (stand-in)";
    case HCCL_E_PARA: return "parameter error (stand-in)";
    case HCCL_E_INTERNAL: return "the ranks' calls do not match (stand-in)";
    default: return "unknown result (stand-in)";
    }
}

HcclResult HcclGetRootInfo(HcclRootInfo *info) {
    if (!info) return HCCL_E_PARA;
    core_make_id(info->internal);
    return HCCL_SUCCESS;
}

HcclResult HcclCommInitRootInfo(uint32_t nranks, const HcclRootInfo *info, uint32_t rank,
                                struct comm **out) {
    if (!info || nranks > INT32_MAX || rank > INT32_MAX) return HCCL_E_PARA;
    return core_init(out, (int)nranks, info->internal, (int)rank);
}

HcclResult HcclGetCommAsyncError(struct comm *c, HcclResult *state) {
    return core_async_error(c, state);
}

HcclResult HcclCommDestroy(struct comm *c) { return core_leave(c); }

HcclResult HcclAllGather(void *send, void *recv, uint64_t count, HcclDataType type,
                         struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!unit) return HCCL_E_PARA;
    return core_collective(ALL_GATHER, send, recv, (size_t)count * unit, 0, c, stream);
}

HcclResult HcclBroadcast(void *buf, uint64_t count, HcclDataType type, uint32_t root,
                         struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!unit || root > INT32_MAX) return HCCL_E_PARA;
    return core_collective(BROADCAST, buf, buf, (size_t)count * unit, (int)root, c, stream);
}

HcclResult HcclSend(void *buf, uint64_t count, HcclDataType type, uint32_t dest,
                    struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!unit || dest > INT32_MAX) return HCCL_E_PARA;
    return core_p2p(1, buf, (size_t)count * unit, (int)dest, c, stream);
}

HcclResult HcclRecv(void *buf, uint64_t count, HcclDataType type, uint32_t src,
                    struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!unit || src > INT32_MAX) return HCCL_E_PARA;
    return core_p2p(0, buf, (size_t)count * unit, (int)src, c, stream);
}

/* Counts and displacements in elements of the types, as uint64 arrays (hccl.h). */
HcclResult HcclAlltoAllV(const void *send, const void *send_counts, const void *sdispls,
                         HcclDataType send_type, const void *recv, const void *recv_counts,
                         const void *rdispls, HcclDataType recv_type, struct comm *c,
                         void *stream) {
    size_t send_unit = type_size(send_type), recv_unit = type_size(recv_type);
    if (!c || !send_unit || !recv_unit || !send_counts || !sdispls || !recv_counts || !rdispls)
        return HCCL_E_PARA;
    const uint64_t *sc = send_counts, *sd = sdispls, *rc = recv_counts, *rd = rdispls;
    for (int peer = 0; peer < c->group->nranks; peer++) {
        HcclResult r = HCCL_SUCCESS;
        if (sc[peer])
            r = core_p2p(1, (char *)send + sd[peer] * send_unit, sc[peer] * send_unit, peer, c,
                         stream);
        if (r == HCCL_SUCCESS && rc[peer])
            r = core_p2p(0, (char *)recv + rd[peer] * recv_unit, rc[peer] * recv_unit, peer, c,
                         stream);
        if (r != HCCL_SUCCESS) return r;
    }
    return HCCL_SUCCESS;
}

HcclResult HcclBarrier(struct comm *c, void *stream) {
    return core_collective(BARRIER, NULL, c, 0, 0, c, stream);
}
