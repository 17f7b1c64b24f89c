/* dlopen_static_tls_module.c — a library with static TLS (initial-exec),
 * for dlopen_tls.c: loading it places its block in every thread's static
 * TLS, initialised, at once. */
static __thread int counter __attribute__((tls_model("initial-exec"))) = 7;

int bump_static(void) { return ++counter; }
void *static_address(void) { return &counter; }
