/*
 * A test-only stand-in for libnccl: the entry points Concord's NCCL/RCCL transport calls
 * (prototypes of NVIDIA/nccl src/nccl.h.in) over the shared rendezvous core (standin_core.h:
 * ranks as threads of one process, host memory as "device" memory; its comment gives the
 * stream and error model). ncclCommAbort and ncclCommDestroy both withdraw the rank.
 *
 * Built by the tests with the host C compiler (concord_comm::standin::build); never
 * installed and never named libnccl.so, so no library search finds it.
 */
typedef int ncclResult_t;
typedef int ncclDataType_t;
enum {
    ncclSuccess = 0,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
};
#define NCCL_UNIQUE_ID_BYTES 128
#define STANDIN_OK ncclSuccess
#define STANDIN_INVALID_ARGUMENT ncclInvalidArgument
#define STANDIN_INVALID_USAGE ncclInvalidUsage
#define STANDIN_ID_BYTES NCCL_UNIQUE_ID_BYTES
#include "standin_core.h"

typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;

static size_t type_size(ncclDataType_t type) {
    static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
    return type >= 0 && type < 10 ? sizes[type] : 0;
}

ncclResult_t ncclGetVersion(int *version) {
    if (!version) return ncclInvalidArgument;
    *version = 22105; /* reports 2.21.5, the scheme of NCCL_VERSION since 2.9 */
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess: return "no error (stand-in)";
    case ncclSystemError: return "system error (stand-in)";
    case ncclInternalError: return "internal error (stand-in)";
    case ncclInvalidArgument: return "invalid argument (stand-in)";
    case ncclInvalidUsage: return "invalid usage: the ranks' calls do not match (stand-in)";
    default: return "unknown result (stand-in)";
    }
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return ncclInvalidArgument;
    core_make_id(id->internal);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(struct comm **out, int nranks, ncclUniqueId id, int rank) {
    return core_init(out, nranks, id.internal, rank);
}

ncclResult_t ncclCommGetAsyncError(struct comm *c, ncclResult_t *state) {
    return core_async_error(c, state);
}

ncclResult_t ncclCommDestroy(struct comm *c) { return core_leave(c); }
ncclResult_t ncclCommAbort(struct comm *c) { return core_leave(c); }

ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t type,
                           struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!unit) return ncclInvalidArgument;
    return core_collective(ALL_GATHER, send, recv, count * unit, 0, c, stream);
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type,
                           int root, struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!unit) return ncclInvalidArgument;
    return core_collective(BROADCAST, send, recv, count * unit, root, c, stream);
}

ncclResult_t ncclSend(const void *buf, size_t count, ncclDataType_t type, int peer,
                      struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!unit) return ncclInvalidArgument;
    return core_p2p(1, (void *)buf, count * unit, peer, c, stream);
}

ncclResult_t ncclRecv(void *buf, size_t count, ncclDataType_t type, int peer, struct comm *c,
                      void *stream) {
    size_t unit = type_size(type);
    if (!unit) return ncclInvalidArgument;
    return core_p2p(0, buf, count * unit, peer, c, stream);
}

/* Every call above is already nonblocking, so a group needs no deferral. */
ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }
