/*
 * A test-only stand-in for libnccl: the entry points Concord's NCCL/RCCL transport calls
 * (prototypes of NVIDIA/nccl src/nccl.h.in), for ranks that are threads of one process and
 * share state keyed by the unique id, with host memory as "device" memory. It checks the
 * transport's plumbing — which buffer, which count, which peer, in which order — not NCCL.
 *
 * Streams: a non-null stream is a pointer to an int counting the operations enqueued on it
 * and not finished yet (HostStaging's stream in comm/src/staging/result.rs). An operation is
 * "enqueued" when a rank calls it and "finishes" when every rank it needs has called its
 * part: the last rank to arrive does every copy of the operation and decrements every
 * participant's counter. Nothing blocks except ncclCommInitRank (until all ranks joined).
 *
 * Errors: a collective whose ranks disagree (kind, count, root), or a send whose matching
 * receive has another count, sets ncclInvalidUsage as the asynchronous error of every rank
 * involved and never finishes (as real NCCL would hang or corrupt). ncclCommAbort withdraws
 * the rank's pending parts, so no copy touches its buffers afterwards.
 *
 * Built by the tests with the host C compiler (see comm/tests/common/mod.rs); never installed
 * and never named libnccl.so, so no library search finds it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;

enum kind { ALL_GATHER = 1, BROADCAST = 2 };

struct comm;

/* One collective in flight: each rank's part, filled as ranks arrive. */
struct round {
    long seq;
    int kind, root;
    size_t bytes; /* per rank */
    int posted;
    const void **send;
    void **recv;
    int **streams;
    struct round *next;
};

/* One send or receive waiting for its match. */
struct p2p {
    int is_send, from, to;
    long seq; /* n-th send from `from` to `to` (or receive of it) */
    void *buf;
    size_t bytes;
    int *stream;
    struct p2p *next;
};

struct group {
    char id[NCCL_UNIQUE_ID_BYTES];
    int nranks, joined;
    struct comm **members;
    struct round *rounds;
    struct p2p *p2ps;
    long *send_seq; /* [from * nranks + to] */
    long *recv_seq; /* [to * nranks + from] */
    struct group *next;
};

struct comm {
    struct group *group;
    int rank;
    long seq;
    ncclResult_t async_error;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t joined = PTHREAD_COND_INITIALIZER;
static struct group *groups;
static unsigned long id_counter;

static size_t type_size(ncclDataType_t type) {
    static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
    return type >= 0 && type < 10 ? sizes[type] : 0;
}

static void stream_add(int *stream, int delta) {
    if (stream) __atomic_add_fetch(stream, delta, __ATOMIC_ACQ_REL);
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
    memset(id, 0, sizeof *id);
    pthread_mutex_lock(&lock);
    unsigned long n = ++id_counter;
    pthread_mutex_unlock(&lock);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long pid = (long)getpid();
    memcpy(id->internal, &n, sizeof n);
    memcpy(id->internal + 8, &pid, sizeof pid);
    memcpy(id->internal + 16, &now, sizeof now);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(struct comm **out, int nranks, ncclUniqueId id, int rank) {
    if (!out || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    pthread_mutex_lock(&lock);
    struct group *g = groups;
    while (g && memcmp(g->id, id.internal, NCCL_UNIQUE_ID_BYTES) != 0) g = g->next;
    if (!g) {
        g = calloc(1, sizeof *g);
        memcpy(g->id, id.internal, NCCL_UNIQUE_ID_BYTES);
        g->nranks = nranks;
        g->members = calloc((size_t)nranks, sizeof *g->members);
        g->send_seq = calloc((size_t)nranks * (size_t)nranks, sizeof(long));
        g->recv_seq = calloc((size_t)nranks * (size_t)nranks, sizeof(long));
        g->next = groups;
        groups = g;
    }
    if (g->nranks != nranks || g->members[rank]) {
        pthread_mutex_unlock(&lock);
        return ncclInvalidUsage;
    }
    struct comm *c = calloc(1, sizeof *c);
    c->group = g;
    c->rank = rank;
    g->members[rank] = c;
    g->joined++;
    pthread_cond_broadcast(&joined);
    while (g->joined < g->nranks) pthread_cond_wait(&joined, &lock);
    pthread_mutex_unlock(&lock);
    *out = c;
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(struct comm *c, ncclResult_t *state) {
    if (!c || !state) return ncclInvalidArgument;
    pthread_mutex_lock(&lock);
    *state = c->async_error;
    pthread_mutex_unlock(&lock);
    return ncclSuccess;
}

static void fail_all(struct group *g, ncclResult_t error) {
    for (int r = 0; r < g->nranks; r++)
        if (g->members[r]) g->members[r]->async_error = error;
}

/* Withdraws rank `rank`'s pending parts (it is leaving): nothing copies into its buffers. */
static void withdraw(struct group *g, int rank) {
    for (struct round *o = g->rounds; o; o = o->next) {
        if (o->send[rank] || o->recv[rank]) {
            o->send[rank] = NULL;
            o->recv[rank] = NULL;
            o->streams[rank] = NULL;
            o->posted--;
        }
    }
    struct p2p **link = &g->p2ps;
    while (*link) {
        struct p2p *p = *link;
        if ((p->is_send && p->from == rank) || (!p->is_send && p->to == rank)) {
            *link = p->next;
            free(p);
        } else {
            link = &p->next;
        }
    }
    g->members[rank] = NULL;
}

static ncclResult_t leave(struct comm *c) {
    if (!c) return ncclInvalidArgument;
    pthread_mutex_lock(&lock);
    withdraw(c->group, c->rank);
    pthread_mutex_unlock(&lock);
    free(c);
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(struct comm *c) { return leave(c); }
ncclResult_t ncclCommAbort(struct comm *c) { return leave(c); }

static void finish_round(struct group *g, struct round *o) {
    int n = g->nranks;
    for (int r = 0; r < n; r++) {
        if (o->kind == ALL_GATHER) {
            for (int q = 0; q < n; q++)
                memmove((char *)o->recv[r] + (size_t)q * o->bytes, o->send[q], o->bytes);
        } else if (r != o->root || o->recv[r] != o->send[r]) {
            memmove(o->recv[r], o->send[o->root], o->bytes);
        }
    }
    for (int r = 0; r < n; r++) stream_add(o->streams[r], -1);
    struct round **link = &g->rounds;
    while (*link != o) link = &(*link)->next;
    *link = o->next;
    free(o->send);
    free(o->recv);
    free(o->streams);
    free(o);
}

static ncclResult_t collective(int kind, const void *send, void *recv, size_t count,
                               ncclDataType_t type, int root, struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!c || !unit || !recv || (count && !send)) return ncclInvalidArgument;
    struct group *g = c->group;
    if (root < 0 || root >= g->nranks) return ncclInvalidArgument;
    pthread_mutex_lock(&lock);
    long seq = ++c->seq;
    struct round *o = g->rounds;
    while (o && o->seq != seq) o = o->next;
    if (!o) {
        o = calloc(1, sizeof *o);
        o->seq = seq;
        o->kind = kind;
        o->root = root;
        o->bytes = count * unit;
        o->send = calloc((size_t)g->nranks, sizeof *o->send);
        o->recv = calloc((size_t)g->nranks, sizeof *o->recv);
        o->streams = calloc((size_t)g->nranks, sizeof *o->streams);
        o->next = g->rounds;
        g->rounds = o;
    }
    stream_add(stream, 1);
    if (o->kind != kind || o->bytes != count * unit || o->root != root) {
        fail_all(g, ncclInvalidUsage);
        pthread_mutex_unlock(&lock);
        return ncclSuccess; /* reported asynchronously, as NCCL does for peers' mismatches */
    }
    /* A zero-byte part still needs a non-null marker of this rank's arrival. */
    o->send[c->rank] = send ? send : recv;
    o->recv[c->rank] = recv;
    o->streams[c->rank] = stream;
    if (++o->posted == g->nranks) finish_round(g, o);
    pthread_mutex_unlock(&lock);
    return ncclSuccess;
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t type,
                           struct comm *c, void *stream) {
    return collective(ALL_GATHER, send, recv, count, type, 0, c, stream);
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type,
                           int root, struct comm *c, void *stream) {
    return collective(BROADCAST, send, recv, count, type, root, c, stream);
}

static ncclResult_t point_to_point(int is_send, void *buf, size_t count, ncclDataType_t type,
                                   int peer, struct comm *c, void *stream) {
    size_t unit = type_size(type);
    if (!c || !unit || (count && !buf)) return ncclInvalidArgument;
    struct group *g = c->group;
    if (peer < 0 || peer >= g->nranks) return ncclInvalidArgument;
    int from = is_send ? c->rank : peer, to = is_send ? peer : c->rank;
    pthread_mutex_lock(&lock);
    long seq = is_send ? ++g->send_seq[from * g->nranks + to] : ++g->recv_seq[to * g->nranks + from];
    stream_add(stream, 1);
    struct p2p **link = &g->p2ps;
    while (*link && !((*link)->is_send != is_send && (*link)->from == from &&
                      (*link)->to == to && (*link)->seq == seq))
        link = &(*link)->next;
    struct p2p *match = *link;
    if (!match) {
        struct p2p *p = calloc(1, sizeof *p);
        p->is_send = is_send;
        p->from = from;
        p->to = to;
        p->seq = seq;
        p->buf = buf;
        p->bytes = count * unit;
        p->stream = stream;
        p->next = g->p2ps;
        g->p2ps = p;
    } else if (match->bytes != count * unit) {
        if (g->members[from]) g->members[from]->async_error = ncclInvalidUsage;
        if (g->members[to]) g->members[to]->async_error = ncclInvalidUsage;
    } else {
        void *dst = is_send ? match->buf : buf;
        const void *src = is_send ? buf : match->buf;
        memmove(dst, src, match->bytes);
        stream_add(match->stream, -1);
        stream_add(stream, -1);
        *link = match->next;
        free(match);
    }
    pthread_mutex_unlock(&lock);
    return ncclSuccess;
}

ncclResult_t ncclSend(const void *buf, size_t count, ncclDataType_t type, int peer,
                      struct comm *c, void *stream) {
    return point_to_point(1, (void *)buf, count, type, peer, c, stream);
}

ncclResult_t ncclRecv(void *buf, size_t count, ncclDataType_t type, int peer, struct comm *c,
                      void *stream) {
    return point_to_point(0, buf, count, type, peer, c, stream);
}

/* Every call above is already nonblocking, so a group needs no deferral. */
ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }
