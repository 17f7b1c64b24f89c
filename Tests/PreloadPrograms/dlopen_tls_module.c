/* dlopen_tls_module.c — a library with dynamic TLS, for dlopen_tls.c:
 * each thread's block is allocated on its first use. */
static __thread int counter = 100;

int bump_dynamic(void) { return ++counter; }
void *dynamic_address(void) { return &counter; }
