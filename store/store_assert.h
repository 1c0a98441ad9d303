/* Assertions for bugs, on in every build type (STYLE.md habit 5): NDEBUG from
 * RelWithDebInfo must not turn off "a frame is checked before it is written". */
#ifndef SK_STORE_ASSERT_H
#define SK_STORE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define STORE_ASSERT(cond)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", __FILE__, __LINE__,   \
				__func__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
