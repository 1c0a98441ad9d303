/* The writer's group commit, without the event loop or the rings: requests in
 * (already decoded, with their ingress sequence), frames appended and made durable,
 * completions out. writer.c feeds it from the ingress ring and pushes the
 * completions; tests can drive it directly.
 *
 * Per batch:
 *   wcore_batch_begin();
 *   wcore_take() for each waiting request, until it says stop;
 *   wcore_batch_commit(): one pwritev of every frame, ONE fdatasync, index entries,
 *     one meta transaction when the batch holds control entries or idempotency keys;
 *   then the caller publishes the durable index and pushes wc->comp[0 .. comp_count).
 * A request whose outcome needs no frame (an error, a duplicate, an existing topic)
 * ends its batch, so a writer restarted after its fdatasync finds, for every request
 * already in the journal and not in a frame, the same state it was answered from.
 *
 * Nothing is allocated per request after wcore_open(), except the partition table
 * of a topic being created. */
#ifndef SK_WRITER_CORE_H
#define SK_WRITER_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/sk_error.h"
#include "ipc/msg.h"
#include "store/index.h"
#include "store/journal.h"
#include "store/meta_write.h"
#include "store/recovery.h"

typedef struct wcore wcore;

enum wcore_take {
	WCORE_TAKEN = 0,  /* added; take more */
	WCORE_TAKEN_END,  /* added; end the batch after it */
	WCORE_NO_ROOM,    /* not added: commit this batch first, then offer it again */
};

struct wcore_opts {
	const char *data_dir;
	uint64_t segment_bytes;
	uint32_t partitions_max;  /* [http] partitions_max: create_topic above it is EINVAL */
	bool prepare_async;       /* prepare segments on a helper thread */
	const struct journal_io *io; /* NULL: real I/O */
	uint32_t batch_records_max;  /* <= SK_WRITER_BATCH_RECORDS_MAX */
	uint64_t batch_bytes_max;    /* <= SK_JOURNAL_BATCH_BYTES_MAX */
};

struct wcore_stats {
	uint64_t last_fsync_ns;
	uint64_t last_records;
	uint64_t last_bytes;
	uint32_t last_frames;
	bool topics_changed; /* topics, log starts or retention changed in the last batch */
};

/* Open journal, meta.db and indexes (nothing read yet). */
sk_err wcore_open(const struct wcore_opts *o, wcore **out);
void wcore_close(wcore *wc);

/* Recovery (store_recover) plus the in-memory state. replay_from_seq: the first
 * ingress sequence still in the ring (0: none); frames holding sequences from it on
 * are remembered so their requests are answered without a second append. On
 * SK_ECORRUPT, why names the file and byte offset. */
sk_err wcore_recover(wcore *wc, uint64_t replay_from_seq, struct recovery_result *res, char *why,
		     size_t why_len);

/* Highest ingress sequence in the journal. */
uint64_t wcore_max_ingress_seq(const wcore *wc);
uint64_t wcore_durable_index(const wcore *wc);
uint64_t wcore_durable_term(const wcore *wc);
bool wcore_storage_full(const wcore *wc);
/* Requests answered without appending because their sequence was already written. */
uint64_t wcore_skipped(const wcore *wc);

void wcore_batch_begin(wcore *wc);
/* Offer one request with its ingress sequence. comp_room: completions the caller can
 * still push this batch (>= 1). */
enum wcore_take wcore_take(wcore *wc, uint64_t seq, const struct msg_req *req);
/* Requests taken in this batch (each has one completion). */
uint32_t wcore_batch_count(const wcore *wc);
/* Make the batch durable. SK_OK: completions ready. SK_EFULL: storage full, every
 * request of the batch was completed with SK_EFULL and the in-memory state rolled back.
 * SK_EIO: the journal, index or meta failed: the writer must exit (recovery redoes it). */
sk_err wcore_batch_commit(wcore *wc, struct wcore_stats *stats);
/* The completions of the committed batch, in request order. */
const struct msg_completion *wcore_completions(const wcore *wc, uint32_t *count_out);

/* Housekeeping between batches (cheap when nothing is due): checkpoint when enough was
 * written since the last one or force, retention by [storage] limits. */
sk_err wcore_checkpoint_if_due(wcore *wc, bool force);
sk_err wcore_retention(wcore *wc, uint64_t retention_bytes, uint64_t retention_ms, uint64_t now_ms,
		       bool *changed_out);

#endif
