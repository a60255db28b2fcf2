/*
 * The rendezvous core of the test-only collective stand-ins (nccl_standin.c, hccl_standin.c):
 * ranks are threads of one process that share state keyed by an opaque id, with host memory
 * as "device" memory. It checks a transport's plumbing — which buffer, which count, which
 * peer, in which order — not the vendor library.
 *
 * Streams: a non-null stream is a pointer to an int counting the operations enqueued on it
 * and not finished yet (HostStaging's stream in comm/src/staging/result.rs). An operation is
 * "enqueued" when a rank calls it and "finishes" when every rank it needs has called its
 * part: the last rank to arrive does every copy of the operation and decrements every
 * participant's counter. Nothing blocks except core_init (until all ranks joined).
 *
 * Errors: a collective whose ranks disagree (kind, bytes, root), or a send whose matching
 * receive has another size, sets STANDIN_INVALID_USAGE as the asynchronous error of every
 * rank involved and never finishes (as a real library would hang or corrupt). core_leave
 * withdraws the rank's pending parts, so no copy touches its buffers afterwards.
 *
 * The including file defines, before including this one: STANDIN_OK, STANDIN_INVALID_ARGUMENT
 * and STANDIN_INVALID_USAGE (its library's result codes) and STANDIN_ID_BYTES (the size of
 * its unique id / root info). Every function here is static: each stand-in library gets its
 * own copy and its own groups.
 */
#ifndef CONCORD_STANDIN_CORE_H
#define CONCORD_STANDIN_CORE_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum kind { ALL_GATHER = 1, BROADCAST = 2, BARRIER = 3 };

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
    char id[STANDIN_ID_BYTES];
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
    int async_error;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t joined = PTHREAD_COND_INITIALIZER;
static struct group *groups;
static unsigned long id_counter;

static void stream_add(int *stream, int delta) {
    if (stream) __atomic_add_fetch(stream, delta, __ATOMIC_ACQ_REL);
}

/* A fresh id: a counter, the process id and the time, zero-padded. */
static void core_make_id(char *id) {
    memset(id, 0, STANDIN_ID_BYTES);
    pthread_mutex_lock(&lock);
    unsigned long n = ++id_counter;
    pthread_mutex_unlock(&lock);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long pid = (long)getpid();
    memcpy(id, &n, sizeof n);
    memcpy(id + 8, &pid, sizeof pid);
    memcpy(id + 16, &now, sizeof now);
}

/* Joins the group of `id` as `rank` of `nranks`; blocks until every rank joined. */
static int core_init(struct comm **out, int nranks, const char *id, int rank) {
    if (!out || !id || nranks < 1 || rank < 0 || rank >= nranks) return STANDIN_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    struct group *g = groups;
    while (g && memcmp(g->id, id, STANDIN_ID_BYTES) != 0) g = g->next;
    if (!g) {
        g = calloc(1, sizeof *g);
        memcpy(g->id, id, STANDIN_ID_BYTES);
        g->nranks = nranks;
        g->members = calloc((size_t)nranks, sizeof *g->members);
        g->send_seq = calloc((size_t)nranks * (size_t)nranks, sizeof(long));
        g->recv_seq = calloc((size_t)nranks * (size_t)nranks, sizeof(long));
        g->next = groups;
        groups = g;
    }
    if (g->nranks != nranks || g->members[rank]) {
        pthread_mutex_unlock(&lock);
        return STANDIN_INVALID_USAGE;
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
    return STANDIN_OK;
}

static int core_async_error(struct comm *c, int *state) {
    if (!c || !state) return STANDIN_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    *state = c->async_error;
    pthread_mutex_unlock(&lock);
    return STANDIN_OK;
}

static void fail_all(struct group *g, int error) {
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

static int core_leave(struct comm *c) {
    if (!c) return STANDIN_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    withdraw(c->group, c->rank);
    pthread_mutex_unlock(&lock);
    free(c);
    return STANDIN_OK;
}

static void finish_round(struct group *g, struct round *o) {
    int n = g->nranks;
    for (int r = 0; r < n; r++) {
        if (o->kind == ALL_GATHER) {
            for (int q = 0; q < n; q++)
                memmove((char *)o->recv[r] + (size_t)q * o->bytes, o->send[q], o->bytes);
        } else if (o->kind == BROADCAST && (r != o->root || o->recv[r] != o->send[r])) {
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

/* A collective of `bytes` per rank (the including file converts counts and types). A barrier
 * passes the comm itself as `recv`: a non-null marker of the rank's arrival. */
static int core_collective(int kind, const void *send, void *recv, size_t bytes, int root,
                           struct comm *c, void *stream) {
    if (!c || !recv || (bytes && !send)) return STANDIN_INVALID_ARGUMENT;
    struct group *g = c->group;
    if (root < 0 || root >= g->nranks) return STANDIN_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    long seq = ++c->seq;
    struct round *o = g->rounds;
    while (o && o->seq != seq) o = o->next;
    if (!o) {
        o = calloc(1, sizeof *o);
        o->seq = seq;
        o->kind = kind;
        o->root = root;
        o->bytes = bytes;
        o->send = calloc((size_t)g->nranks, sizeof *o->send);
        o->recv = calloc((size_t)g->nranks, sizeof *o->recv);
        o->streams = calloc((size_t)g->nranks, sizeof *o->streams);
        o->next = g->rounds;
        g->rounds = o;
    }
    stream_add(stream, 1);
    if (o->kind != kind || o->bytes != bytes || o->root != root) {
        fail_all(g, STANDIN_INVALID_USAGE);
        pthread_mutex_unlock(&lock);
        return STANDIN_OK; /* reported asynchronously, as the libraries do for peers' mismatches */
    }
    /* A zero-byte part still needs a non-null marker of this rank's arrival. */
    o->send[c->rank] = send ? send : recv;
    o->recv[c->rank] = recv;
    o->streams[c->rank] = (int *)stream;
    if (++o->posted == g->nranks) finish_round(g, o);
    pthread_mutex_unlock(&lock);
    return STANDIN_OK;
}

/* A send of `bytes` to `peer` (is_send) or a receive of them from `peer`. */
static int core_p2p(int is_send, void *buf, size_t bytes, int peer, struct comm *c,
                    void *stream) {
    if (!c || (bytes && !buf)) return STANDIN_INVALID_ARGUMENT;
    struct group *g = c->group;
    if (peer < 0 || peer >= g->nranks) return STANDIN_INVALID_ARGUMENT;
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
        p->bytes = bytes;
        p->stream = (int *)stream;
        p->next = g->p2ps;
        g->p2ps = p;
    } else if (match->bytes != bytes) {
        if (g->members[from]) g->members[from]->async_error = STANDIN_INVALID_USAGE;
        if (g->members[to]) g->members[to]->async_error = STANDIN_INVALID_USAGE;
    } else {
        void *dst = is_send ? match->buf : buf;
        const void *src = is_send ? buf : match->buf;
        memmove(dst, src, match->bytes);
        stream_add(match->stream, -1);
        stream_add((int *)stream, -1);
        *link = match->next;
        free(match);
    }
    pthread_mutex_unlock(&lock);
    return STANDIN_OK;
}

#endif
