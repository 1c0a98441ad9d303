/* `skiffd verify -c FILE`: check the whole journal offline and print a summary
 * (segments, frames per kind, records per partition, the first problem found
 * with its file and byte offset). Reads only; safe while skiffd is stopped (a
 * running writer may be mid-batch, which shows as a torn tail). */
#ifndef SK_STORE_VERIFY_H
#define SK_STORE_VERIFY_H

#include <stdio.h>

#include "common/config.h"

#define SK_VERIFY_CLEAN 0
#define SK_VERIFY_PROBLEM 65 /* EX_DATAERR: the journal is not clean */
#define SK_VERIFY_IOERR 74   /* EX_IOERR: could not read it */

/* Verify cfg->data_dir/journal, print the summary on stdout. Returns SK_VERIFY_CLEAN
 * only when every frame is valid and continuous and offsets are dense. */
int verify_main(const sk_config *cfg);
/* The same for a data directory, printing to out (tests). */
int verify_data_dir(const char *data_dir, FILE *out);

#endif
