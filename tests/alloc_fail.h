/* Allocation-failure runs (curl's torture idea) for tests linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc: after alloc_fail_after(n) the (n+1)th
 * allocation made by statically linked code (libcxr, the test) fails, and every later one
 * succeeds. Shared libraries (libjpeg, OpenJPEG, CharLS, zlib, iconv, cairo) allocate through
 * their own references to malloc and are not failed. */
#ifndef CXR_TESTS_ALLOC_FAIL_H
#define CXR_TESTS_ALLOC_FAIL_H

/* Arms the failure: n allocations succeed, the next one fails. n < 0 disarms. */
void alloc_fail_after(long n);

/* How many allocations failed since alloc_fail_after() last armed the failure. */
long alloc_fail_count(void);

#endif
