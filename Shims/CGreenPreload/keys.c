// keys.c — pthread_key_* and C11's tss_* per fiber thread. Keys are libc's
// (so native threads and the main thread keep using libc's storage); fiber
// threads keep their values in a two-level table of their own, and run the
// destructors when they finish. (glibc's tss_* call its pthread key
// functions inside libc, where no interposer sees them: they are here too.)
#include "preload.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <threads.h>

#define KEYS 1024 // PTHREAD_KEYS_MAX
#define CHUNK 32

static void (*destructors[KEYS])(void *);
static uint32_t generation[KEYS]; // odd while the key exists; a value counts only for its generation

GREEN_EXPORT int pthread_key_create(pthread_key_t *key, void (*destructor)(void *)) {
    int r = PREAL(pthread_key_create)(key, destructor);
    if (r == 0 && *key < KEYS) {
        destructors[*key] = destructor;
        __atomic_add_fetch(&generation[*key], 1, __ATOMIC_RELEASE);
    }
    return r;
}

GREEN_EXPORT int pthread_key_delete(pthread_key_t key) {
    int r = PREAL(pthread_key_delete)(key);
    if (r == 0 && key < KEYS) {
        destructors[key] = NULL;
        __atomic_add_fetch(&generation[key], 1, __ATOMIC_RELEASE);
    }
    return r;
}

static gthread_specific *slot(gthread *t, pthread_key_t key, int create) {
    gthread_specific **chunks = (gthread_specific **)t->specific;
    if (!chunks) {
        if (!create) return NULL;
        chunks = calloc(KEYS / CHUNK, sizeof *chunks);
        if (!chunks) return NULL;
        t->specific = (gthread_specific *)chunks;
    }
    gthread_specific *c = chunks[key / CHUNK];
    if (!c) {
        if (!create) return NULL;
        c = chunks[key / CHUNK] = calloc(CHUNK, sizeof *c);
        if (!c) return NULL;
    }
    return &c[key % CHUNK];
}

GREEN_EXPORT void *pthread_getspecific(pthread_key_t key) {
    gthread *t = gthread_current();
    if (!t) return PREAL(pthread_getspecific)(key);
    if (key >= KEYS) return NULL;
    gthread_specific *s = slot(t, key, 0);
    return s && s->gen == __atomic_load_n(&generation[key], __ATOMIC_ACQUIRE) ? s->value : NULL;
}

GREEN_EXPORT int pthread_setspecific(pthread_key_t key, const void *value) {
    gthread *t = gthread_current();
    if (!t) return PREAL(pthread_setspecific)(key, value);
    uint32_t gen = key < KEYS ? __atomic_load_n(&generation[key], __ATOMIC_ACQUIRE) : 0;
    if (!(gen & 1)) return EINVAL; // no such key
    gthread_specific *s = slot(t, key, 1);
    if (!s) return ENOMEM;
    s->gen = gen;
    s->value = (void *)value;
    return 0;
}

// The names glibc also exports (__pthread_key_create is a default version
// since 2.34; the other two for programs linked before 2.34).
GREEN_EXPORT int __pthread_key_create(pthread_key_t *key, void (*destructor)(void *)) {
    return pthread_key_create(key, destructor);
}
GREEN_EXPORT void *__pthread_getspecific(pthread_key_t key) { return pthread_getspecific(key); }
GREEN_EXPORT int __pthread_setspecific(pthread_key_t key, const void *value) { return pthread_setspecific(key, value); }

/// glibc's thrd_err_map: a pthread error number as a C11 thread result.
static int thrd_result(int r) {
    switch (r) {
    case 0: return thrd_success;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
    }
}

GREEN_EXPORT int tss_create(tss_t *key, tss_dtor_t destructor) { return thrd_result(pthread_key_create(key, destructor)); }
GREEN_EXPORT void tss_delete(tss_t key) { pthread_key_delete(key); }
GREEN_EXPORT void *tss_get(tss_t key) { return pthread_getspecific(key); }
GREEN_EXPORT int tss_set(tss_t key, void *value) { return thrd_result(pthread_setspecific(key, value)); }

void gthread_run_key_destructors(gthread *t) {
    gthread_specific **chunks = (gthread_specific **)t->specific;
    if (!chunks) return;
    // As glibc: repeat while destructors set new values, at most 4 rounds.
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
        int ran = 0;
        for (unsigned k = 0; k < KEYS; k++) {
            gthread_specific *c = chunks[k / CHUNK];
            if (!c) { k += CHUNK - 1; continue; }
            gthread_specific *s = &c[k % CHUNK];
            void *v = s->value;
            if (!v || s->gen != __atomic_load_n(&generation[k], __ATOMIC_ACQUIRE)) continue;
            s->value = NULL;
            if (destructors[k]) { destructors[k](v); ran = 1; }
        }
        if (!ran) break;
    }
    for (unsigned i = 0; i < KEYS / CHUNK; i++) free(chunks[i]);
    free(chunks);
    t->specific = NULL;
}
