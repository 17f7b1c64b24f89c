// dns.c — name resolution on the hub's thread pool. glibc's resolver makes
// its own internal socket calls, which no interposer sees, so the whole
// lookup runs on a pool thread while the fiber parks; the result is libc's
// own (/etc/hosts and nsswitch included).
#include "shim.h"
#include <stdlib.h>
#include <string.h>

typedef struct gai_call {
    const char *node, *service;
    const struct addrinfo *hints;
    struct addrinfo **res;
    int result, err;
} gai_call;

static void run_gai(void *p) {
    gai_call *c = p;
    c->result = REAL(getaddrinfo)(c->node, c->service, c->hints, c->res);
    c->err = errno;
}

GREEN_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    if (!green_on_fiber()) return REAL(getaddrinfo)(node, service, hints, res);
    gai_call c = {node, service, hints, res, 0, 0};
    if (hub()->run_blocking(run_gai, &c) != 0) return REAL(getaddrinfo)(node, service, hints, res);
    if (c.result == EAI_SYSTEM) errno = c.err;
    return c.result;
}

typedef struct gni_call {
    const struct sockaddr *sa;
    socklen_t salen;
    char *host;
    socklen_t hostlen;
    char *serv;
    socklen_t servlen;
    int flags, result, err;
} gni_call;

static void run_gni(void *p) {
    gni_call *c = p;
    c->result = REAL(getnameinfo)(c->sa, c->salen, c->host, c->hostlen, c->serv, c->servlen, c->flags);
    c->err = errno;
}

GREEN_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                char *serv, socklen_t servlen, int flags) {
    if (!green_on_fiber()) return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
    gni_call c = {sa, salen, host, hostlen, serv, servlen, flags, 0, 0};
    if (hub()->run_blocking(run_gni, &c) != 0) return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
    if (c.result == EAI_SYSTEM) errno = c.err;
    return c.result;
}

typedef struct ghbn_call {
    const char *name;
    int af; ///< -1: gethostbyname_r, else gethostbyname2_r
    struct hostent *ret;
    char *buf;
    size_t buflen;
    struct hostent **result;
    int *h_errnop;
    int rc;
} ghbn_call;

static void run_ghbn(void *p) {
    ghbn_call *c = p;
    c->rc = c->af < 0 ? REAL(gethostbyname_r)(c->name, c->ret, c->buf, c->buflen, c->result, c->h_errnop)
                      : REAL(gethostbyname2_r)(c->name, c->af, c->ret, c->buf, c->buflen, c->result, c->h_errnop);
}

static int ghbn(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
                struct hostent **result, int *h_errnop) {
    ghbn_call c = {name, af, ret, buf, buflen, result, h_errnop, 0};
    if (hub()->run_blocking(run_ghbn, &c) != 0) run_ghbn(&c);
    return c.rc;
}

GREEN_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                    struct hostent **result, int *h_errnop) {
    if (!green_on_fiber()) return REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
    return ghbn(name, -1, ret, buf, buflen, result, h_errnop);
}

GREEN_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
                     struct hostent **result, int *h_errnop) {
    if (!green_on_fiber()) return REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
    return ghbn(name, af, ret, buf, buflen, result, h_errnop);
}

/// The non-reentrant forms return this thread's static result, as glibc's do
/// (valid until the next call on this thread, whichever fiber makes it).
/// Each lookup fills a buffer of its own while its fiber is parked: other
/// fibers of the thread may look up meanwhile, and must not resize or
/// overwrite the memory a pool thread is still writing. The finished result
/// then becomes the thread's static one, and the previous one is freed.
static __thread struct hostent static_host;
static __thread char *static_buf;

static struct hostent *ghbn_static(const char *name, int af) {
    size_t len = 1024;
    char *buf = NULL;
    for (;;) {
        char *bigger = realloc(buf, len);
        if (!bigger) {
            free(buf);
            h_errno = NETDB_INTERNAL;
            errno = ENOMEM;
            return NULL;
        }
        buf = bigger;
        struct hostent host, *result = NULL;
        int herr = 0;
        int rc = ghbn(name, af, &host, buf, len, &result, &herr);
        if (rc == ERANGE && len < (1u << 20)) {
            len *= 2;
            continue;
        }
        if (!result) {
            free(buf);
            h_errno = herr;
            return NULL;
        }
        free(static_buf); // the thread's previous result, as glibc overwrites it
        static_buf = buf;
        static_host = host;
        return &static_host;
    }
}

GREEN_EXPORT struct hostent *gethostbyname(const char *name) {
    if (!green_on_fiber()) return REAL(gethostbyname)(name);
    return ghbn_static(name, -1);
}

GREEN_EXPORT struct hostent *gethostbyname2(const char *name, int af) {
    if (!green_on_fiber()) return REAL(gethostbyname2)(name, af);
    return ghbn_static(name, af);
}
