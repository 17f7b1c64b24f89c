// green_export.h — what the library shows other code. Under LD_PRELOAD every
// exported name can capture a host program's own function of that name, so
// the C targets export only the interposed libc calls (GREEN_EXPORT) and the
// public C API declared in the include/ folders; every other declaration
// sits between GREEN_HIDDEN_BEGIN and GREEN_HIDDEN_END in an internal header.
// (Pragmas in the sources rather than -fvisibility=hidden: unsafe build flags
// would keep other packages from depending on Green.)
#ifndef GREEN_EXPORT_H
#define GREEN_EXPORT_H

/// An interposed libc call: exported, so that it takes the place of libc's.
#define GREEN_EXPORT __attribute__((visibility("default")))

/// Declarations between these two are internal to the library (hidden).
#define GREEN_HIDDEN_BEGIN _Pragma("GCC visibility push(hidden)")
#define GREEN_HIDDEN_END _Pragma("GCC visibility pop")

#endif
