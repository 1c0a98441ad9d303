/* The exit history: every worker exit, kept in sqlite (data_dir/supervisor.db)
 * so it survives daemon restarts, and bounded to rows_max rows (the oldest go
 * first). Only skiffd opens it; skiffctl reads it through the control socket. */
#ifndef SK_SUP_HISTORY_H
#define SK_SUP_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "supervisor/sup_status.h"

#define SUP_HISTORY_FILE "supervisor.db"

typedef struct sup_history sup_history;

/* Open (creating) path with rows_max >= 1 kept. SK_EIO with a reason in err on failure,
 * SK_EVERSION when the file has a schema from a newer skiffd. */
sk_err sup_history_open(const char *path, uint32_t rows_max, sup_history **out, char *err,
			size_t err_len);
void sup_history_close(sup_history *h);
/* Append one exit and drop rows beyond rows_max. SK_EIO on a sqlite error. */
sk_err sup_history_add(sup_history *h, const struct sup_exit *e);
/* Newest first: up to limit exits (of worker, or of every worker when worker < 0) into
 * out[0..limit); the count in *n_out. */
sk_err sup_history_list(sup_history *h, int worker, uint32_t limit, struct sup_exit *out,
			uint32_t *n_out);
/* Rows held now (tests). */
sk_err sup_history_count(sup_history *h, uint64_t *count_out);

#endif
