// Declarations the Glibc Swift module does not carry, for the shim tests.
#include <sys/epoll.h>
