// green_preload.h — the preload library's one public entry point, for tests.
#ifndef GREEN_PRELOAD_PUBLIC_H
#define GREEN_PRELOAD_PUBLIC_H

/// 1 when pthreads are fibers in this process (GREEN_THREADS=fiber), else 0.
int green_preload_fiber_mode(void);

#endif
