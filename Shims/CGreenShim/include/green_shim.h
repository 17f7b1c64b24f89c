// green_shim.h — the interposition shim. Its interposers (read, connect,
// poll, nanosleep, getaddrinfo, …) are plain C symbols that shadow libc's:
// on a fiber they park through the hub ABI, anywhere else they call libc's
// function unchanged. Nothing to call: linking it is enough.
#ifndef GREEN_SHIM_H
#define GREEN_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

/// Whether the interposers resolved libc's functions (always true once
/// loaded; the Swift runtime calls it so the linker keeps the shim).
int green_shim_ready(void);

#ifdef __cplusplus
}
#endif
#endif
