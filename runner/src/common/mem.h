/*
 * Allocation policy for all of sauve: allocation failure aborts the process
 * with a message, so callers never check for NULL. A backup runner that is out
 * of memory cannot do anything useful, and Kubernetes restarts the Job.
 */
#ifndef SAUVE_COMMON_MEM_H
#define SAUVE_COMMON_MEM_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a newly allocated string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Overwrites a secret before freeing it; NULL is allowed. */
void free_secret(char *s);

#endif
