// Header-only: see include/test_support.h.
