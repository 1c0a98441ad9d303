/* The one rule for topic and consumer-group names, checked at every depth that
 * handles them (http ingress, the frame codec on write and read, meta.db):
 * [A-Za-z0-9._-]{1,max}, and not "." or ".." (a topic becomes a directory). */
#ifndef SK_NAMES_H
#define SK_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* True when the len bytes at s form a valid name of at most max bytes. */
bool sk_name_valid(const char *s, size_t len, size_t max);

#endif
