/* The writer's group commit (writer_core.h).
 *
 * In-memory state, rebuilt at every start from meta.db and the indexes after
 * recovery: topics (by id, dense from 1), and per partition the next offset and the
 * log start (loaded on first use). A batch changes that state as it takes requests
 * (a produce to a topic created earlier in the same batch works); every change is
 * logged in an undo list so a batch that fails with ENOSPC leaves no trace.
 *
 * Requests already in the journal (sequence <= the highest ingress sequence of a
 * frame) are answered from the frames recovery saw (seq_map) or, for requests that
 * made no frame, recomputed against the same state (see writer_core.h). */
#include "workers/writer/writer_core.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "store/frame.h"
#include "store/record.h"
#include "store/store_assert.h"

#define WC_TOPIC_SLOTS (SK_TOPICS_MAX + 1)
#define WC_HASH_SLOTS (2 * SK_WRITER_BATCH_RECORDS_MAX) /* power of two, > 2x the batch */
#define WC_UNDO_MAX (2 * SK_WRITER_BATCH_RECORDS_MAX + 64)
#define WC_SEQ_MAP_MAX SK_WRITER_BATCH_RECORDS_MAX
/* A checkpoint every this many bytes or frames bounds what recovery scans (about
 * 1 us a frame, so ~35 ms), but not more often than every WC_CHECKPOINT_MS_MIN: each
 * costs an fdatasync per index file written since the last one plus a meta commit. */
#define WC_CHECKPOINT_BYTES (16ull * 1024 * 1024)
#define WC_CHECKPOINT_FRAMES 32768
#define WC_CHECKPOINT_MS_MIN 50
#define WC_FULL_RETRY_MS 1000 /* after ENOSPC, how often a roll is tried again */
#define WC_TERM 1             /* single node */

struct wpart {
	bool loaded;
	uint64_t next_offset;
	uint64_t log_start;
};

struct wtopic {
	bool used;
	uint32_t partitions;
	uint16_t name_len;
	char name[SK_TOPIC_NAME_BYTES_MAX + 1];
	uint64_t retention_bytes;
	uint64_t retention_ms;
	struct wpart *parts;
};

/* In-batch lookups (idempotency keys, commits), valid when gen == wc->gen. */
struct hslot {
	uint64_t gen;
	uint32_t topic_id;
	uint32_t partition;
	const uint8_t *key;
	uint16_t key_len;
	uint32_t found_partition; /* idempotency: where the first produce went */
	uint64_t offset;
	uint64_t index;
};

enum undo_kind { UNDO_NEXT_OFFSET = 1, UNDO_LOG_START, UNDO_TOPIC };

struct undo {
	enum undo_kind kind;
	struct wpart *part;
	uint32_t topic_id;
	uint64_t old;
};

struct wframe {
	uint64_t off; /* in buf */
	struct frame_header h;
	bool meta;    /* has a meta effect (control entry or idempotency key) */
	int32_t comp; /* its completion, -1 for internal frames */
};

struct seq_ent {
	uint64_t seq;
	uint16_t kind; /* frame kind */
	uint32_t topic_id;
	uint32_t partition;
	uint32_t count;
	uint64_t offset;
	uint64_t index;
};

struct wcore {
	struct wcore_opts o;
	char data_dir[SK_PATH_BYTES_MAX];
	journal *j;
	meta *m;
	index_set *ix;
	bool fatal;
	bool storage_full;
	uint64_t full_since_ms;

	struct wtopic *topics; /* [WC_TOPIC_SLOTS], by id */
	uint32_t next_topic_id;

	/* the batch */
	uint8_t *buf;
	uint64_t buf_cap;
	uint64_t buf_used;
	struct wframe *frames;
	uint32_t frame_count;
	struct msg_completion *comp;
	uint32_t comp_count;
	struct undo *undo;
	uint32_t undo_count;
	struct hslot *idem;
	struct hslot *commits;
	uint64_t gen;
	uint64_t next_index;
	bool replay_only; /* recomputing an answer for a request already in the journal */
	bool topics_changed;

	uint64_t max_ingress_seq;
	struct seq_ent *seq_map;
	uint32_t seq_count;
	uint64_t replay_from_seq;
	uint64_t skipped;

	uint64_t cp_bytes;
	uint64_t cp_frames;
	uint64_t cp_segment;
	uint64_t cp_last_ms;
	bool cp_rolled;
};

/* ---- open / close ---- */

static sk_err wc_alloc(wcore *wc)
{
	uint32_t n = wc->o.batch_records_max;
	wc->buf_cap = wc->o.batch_bytes_max + SK_FRAME_BYTES_MAX;
	wc->buf = malloc(wc->buf_cap);
	wc->frames = calloc(n + 64, sizeof(*wc->frames));
	wc->comp = calloc(n, sizeof(*wc->comp));
	wc->undo = calloc(WC_UNDO_MAX, sizeof(*wc->undo));
	wc->idem = calloc(WC_HASH_SLOTS, sizeof(*wc->idem));
	wc->commits = calloc(WC_HASH_SLOTS, sizeof(*wc->commits));
	wc->topics = calloc(WC_TOPIC_SLOTS, sizeof(*wc->topics));
	wc->seq_map = calloc(WC_SEQ_MAP_MAX, sizeof(*wc->seq_map));
	if (!wc->buf || !wc->frames || !wc->comp || !wc->undo || !wc->idem || !wc->commits ||
	    !wc->topics || !wc->seq_map)
		return SK_ENOMEM;
	return SK_OK;
}

sk_err wcore_open(const struct wcore_opts *o, wcore **out)
{
	if (o->batch_records_max < 1 || o->batch_records_max > SK_WRITER_BATCH_RECORDS_MAX ||
	    o->batch_bytes_max < 1 || o->batch_bytes_max > SK_JOURNAL_BATCH_BYTES_MAX)
		return SK_EINVAL;
	wcore *wc = calloc(1, sizeof(*wc));
	if (wc == NULL)
		return SK_ENOMEM;
	wc->o = *o;
	snprintf(wc->data_dir, sizeof(wc->data_dir), "%s", o->data_dir);
	wc->o.data_dir = wc->data_dir;
	sk_err err = wc_alloc(wc);
	struct journal_opts jo = {.data_dir = wc->data_dir, .segment_bytes = o->segment_bytes,
				  .io = o->io, .prepare_async = o->prepare_async};
	if (err == SK_OK)
		err = journal_open(&jo, &wc->j);
	if (err == SK_OK)
		err = meta_open(wc->data_dir, false, &wc->m);
	if (err == SK_OK)
		err = index_set_open(wc->data_dir, &wc->ix);
	if (err != SK_OK) {
		wcore_close(wc);
		return err;
	}
	*out = wc;
	return SK_OK;
}

void wcore_close(wcore *wc)
{
	if (wc == NULL)
		return;
	if (wc->topics)
		for (uint32_t i = 0; i < WC_TOPIC_SLOTS; i++)
			free(wc->topics[i].parts);
	journal_close(wc->j);
	index_set_close(wc->ix);
	meta_close(wc->m);
	free(wc->buf);
	free(wc->frames);
	free(wc->comp);
	free(wc->undo);
	free(wc->idem);
	free(wc->commits);
	free(wc->topics);
	free(wc->seq_map);
	free(wc);
}

uint64_t wcore_max_ingress_seq(const wcore *wc) { return wc->max_ingress_seq; }
uint64_t wcore_durable_index(const wcore *wc) { return journal_durable_index(wc->j); }
uint64_t wcore_durable_term(const wcore *wc) { return journal_last_term(wc->j) ? journal_last_term(wc->j) : WC_TERM; }
bool wcore_storage_full(const wcore *wc) { return wc->storage_full; }
uint64_t wcore_skipped(const wcore *wc) { return wc->skipped; }
uint32_t wcore_batch_count(const wcore *wc) { return wc->comp_count; }

const struct msg_completion *wcore_completions(const wcore *wc, uint32_t *count_out)
{
	*count_out = wc->comp_count;
	return wc->comp;
}

/* ---- recovery and state ---- */

static sk_err seq_map_cb(void *arg, const struct frame_header *h, const uint8_t *body,
			 struct journal_pos pos)
{
	wcore *wc = arg;
	if (h->ingress_seq == 0 || wc->replay_from_seq == 0 || h->ingress_seq < wc->replay_from_seq)
		return SK_OK;
	if (wc->seq_count > 0 && h->ingress_seq <= wc->seq_map[wc->seq_count - 1].seq)
		return SK_OK; /* seen already: recovery scanned again to rebuild the index */
	if (wc->seq_count == WC_SEQ_MAP_MAX) {
		log_error("writer_seq_map_full", "seq=%" PRIu64, h->ingress_seq);
		return SK_OK; /* its request gets an EAGAIN answer instead of its offset */
	}
	struct seq_ent *e = &wc->seq_map[wc->seq_count++];
	*e = (struct seq_ent){.seq = h->ingress_seq, .kind = h->kind, .topic_id = h->topic_id,
			      .partition = h->partition, .count = h->record_count,
			      .offset = h->base_offset, .index = h->index};
	struct frame_offset_committed oc;
	struct frame_log_start ls;
	if (h->kind == FRAME_OFFSET_COMMITTED &&
	    frame_offset_committed_decode(body, h->body_bytes, &oc) == SK_OK)
		e->offset = oc.offset;
	if (h->kind == FRAME_LOG_START && frame_log_start_decode(body, h->body_bytes, &ls) == SK_OK)
		e->offset = ls.log_start;
	(void)pos;
	return SK_OK;
}

static sk_err load_topics(wcore *wc)
{
	struct meta_topic *list = calloc(SK_TOPICS_MAX, sizeof(*list));
	if (list == NULL)
		return SK_ENOMEM;
	uint32_t n = 0;
	sk_err err = meta_topics_list(wc->m, list, SK_TOPICS_MAX, &n);
	for (uint32_t i = 0; err == SK_OK && i < n; i++) {
		const struct meta_topic *mt = &list[i];
		if (mt->id == 0 || mt->id >= WC_TOPIC_SLOTS) {
			log_error("writer_topic_id_out_of_range", "id=%" PRIu32, mt->id);
			err = SK_ECORRUPT;
			break;
		}
		struct wtopic *t = &wc->topics[mt->id];
		t->parts = calloc(mt->partitions, sizeof(*t->parts));
		if (t->parts == NULL) {
			err = SK_ENOMEM;
			break;
		}
		t->used = true;
		t->partitions = mt->partitions;
		t->name_len = (uint16_t)strlen(mt->name);
		memcpy(t->name, mt->name, t->name_len + 1);
		t->retention_bytes = mt->retention_bytes;
		t->retention_ms = mt->retention_ms;
	}
	free(list);
	if (err == SK_OK)
		err = meta_next_topic_id(wc->m, &wc->next_topic_id);
	return err;
}

sk_err wcore_recover(wcore *wc, uint64_t replay_from_seq, struct recovery_result *res, char *why,
		     size_t why_len)
{
	wc->replay_from_seq = replay_from_seq;
	wc->seq_count = 0;
	sk_err err = store_recover(wc->j, wc->m, wc->ix, seq_map_cb, wc, res, why, why_len);
	if (err != SK_OK)
		return err;
	wc->max_ingress_seq = res->max_ingress_seq;
	wc->next_index = journal_last_index(wc->j) + 1;
	struct meta_checkpoint cp;
	err = meta_checkpoint_get(wc->m, &cp);
	if (err == SK_OK)
		err = load_topics(wc);
	if (err != SK_OK) {
		snprintf(why, why_len, "loading meta.db: %s", sk_strerror(err));
		return err;
	}
	wc->cp_segment = cp.segment_id;
	wc->cp_bytes = res->bytes;
	wc->cp_frames = res->frames;
	return SK_OK;
}

static struct wtopic *topic_get(wcore *wc, uint32_t id)
{
	if (id == 0 || id >= WC_TOPIC_SLOTS || !wc->topics[id].used)
		return NULL;
	return &wc->topics[id];
}

/* The partition's state, loaded from the index and meta.db on first use. */
static struct wpart *part_get(wcore *wc, uint32_t topic_id, struct wtopic *t, uint32_t partition)
{
	if (partition >= t->partitions)
		return NULL;
	struct wpart *p = &t->parts[partition];
	if (p->loaded)
		return p;
	p->next_offset = index_next_offset(wc->ix, topic_id, partition);
	uint64_t ls = 0;
	sk_err err = meta_log_start(wc->m, topic_id, partition, &ls);
	if (err != SK_OK && err != SK_ENOTFOUND) {
		log_error("writer_meta_failed", "what=log_start err=%s", sk_errname(err));
		wc->fatal = true;
	}
	p->log_start = ls;
	p->loaded = true;
	return p;
}

/* ---- the batch ---- */

void wcore_batch_begin(wcore *wc)
{
	wc->buf_used = 0;
	wc->frame_count = 0;
	wc->comp_count = 0;
	wc->undo_count = 0;
	wc->gen++;
	wc->next_index = journal_last_index(wc->j) + 1;
	wc->topics_changed = false;
	wc->replay_only = false;
}

static void undo_push(wcore *wc, enum undo_kind kind, struct wpart *p, uint32_t topic_id, uint64_t old)
{
	STORE_ASSERT(wc->undo_count < WC_UNDO_MAX);
	wc->undo[wc->undo_count++] = (struct undo){.kind = kind, .part = p, .topic_id = topic_id, .old = old};
}

static void undo_all(wcore *wc)
{
	while (wc->undo_count > 0) {
		struct undo *u = &wc->undo[--wc->undo_count];
		if (u->kind == UNDO_NEXT_OFFSET) {
			u->part->next_offset = u->old;
		} else if (u->kind == UNDO_LOG_START) {
			u->part->log_start = u->old;
		} else {
			struct wtopic *t = &wc->topics[u->topic_id];
			free(t->parts);
			memset(t, 0, sizeof(*t));
			wc->next_topic_id = (uint32_t)u->old;
		}
	}
}

static struct msg_completion *comp_new(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	STORE_ASSERT(wc->comp_count < wc->o.batch_records_max);
	struct msg_completion *c = &wc->comp[wc->comp_count++];
	*c = (struct msg_completion){.kind = req->kind, .status = SK_OK, .req_seq = seq,
				     .partition = req->partition, .topic_id = req->topic_id,
				     .index = wc->next_index - 1};
	return c;
}

/* A request answered without a frame: it ends the batch. */
static enum wcore_take answer(wcore *wc, uint64_t seq, const struct msg_req *req, sk_err status,
			      uint64_t current)
{
	struct msg_completion *c = comp_new(wc, seq, req);
	c->status = (uint8_t)status;
	c->current = current;
	return WCORE_TAKEN_END;
}

static size_t hash_key(uint32_t topic_id, uint32_t partition, const uint8_t *key, size_t len)
{
	uint32_t h = crc32c(topic_id * 2654435761u ^ partition, key, len);
	return (size_t)h & (WC_HASH_SLOTS - 1);
}

/* Find (or, with insert, claim) the slot for a key in an in-batch table. */
static struct hslot *hslot_find(wcore *wc, struct hslot *tab, uint32_t topic_id, uint32_t partition,
				const uint8_t *key, uint16_t len, bool insert)
{
	size_t k = hash_key(topic_id, partition, key, len);
	for (size_t probes = 0; probes < WC_HASH_SLOTS; probes++, k = (k + 1) & (WC_HASH_SLOTS - 1)) {
		struct hslot *s = &tab[k];
		if (s->gen != wc->gen) {
			if (!insert)
				return NULL;
			*s = (struct hslot){.gen = wc->gen, .topic_id = topic_id, .partition = partition,
					    .key = key, .key_len = len};
			return s;
		}
		if (s->topic_id == topic_id && s->partition == partition && s->key_len == len &&
		    memcmp(s->key, key, len) == 0)
			return s;
	}
	STORE_ASSERT(!"in-batch hash table full");
	return NULL;
}

/* Room for a frame of body_bytes: *dst is where its header goes. NO_ROOM: commit the
 * batch first. A roll is done only while the batch holds no frame. On a roll that
 * hits ENOSPC, *full_out is set. */
static enum wcore_take frame_room(wcore *wc, uint64_t body_bytes, uint8_t **dst, bool *full_out)
{
	uint64_t len = frame_length_for_body(body_bytes);
	*full_out = false;
	if (wc->frame_count > 0 &&
	    (wc->buf_used + len > wc->o.batch_bytes_max || wc->frame_count >= wc->o.batch_records_max))
		return WCORE_NO_ROOM;
	/* A frame over the journal's batch limit starts a segment of its own (journal.h). */
	bool big = len > SK_JOURNAL_BATCH_BYTES_MAX && journal_append_pos(wc->j).position > 0;
	if (big || wc->buf_used + len > journal_room(wc->j)) {
		if (wc->frame_count > 0)
			return WCORE_NO_ROOM;
		uint64_t now = clock_mono_ms();
		if (wc->storage_full && now - wc->full_since_ms < WC_FULL_RETRY_MS) {
			*full_out = true;
			return WCORE_TAKEN;
		}
		sk_err err = journal_roll(wc->j, len);
		if (err == SK_EFULL) {
			if (!wc->storage_full)
				log_error("writer_storage_full", "what=roll segment_bytes=%" PRIu64, wc->o.segment_bytes);
			wc->storage_full = true;
			wc->full_since_ms = now;
			*full_out = true;
			return WCORE_TAKEN;
		}
		if (err != SK_OK) {
			wc->fatal = true;
			return WCORE_NO_ROOM;
		}
		wc->cp_rolled = true;
	}
	*dst = wc->buf + wc->buf_used;
	return WCORE_TAKEN;
}

/* Finish the frame whose body is already at dst + header and add it to the batch. */
static struct wframe *frame_add(wcore *wc, uint8_t *dst, struct frame_header *h, uint64_t seq,
				bool meta_effect, int32_t comp)
{
	h->term = WC_TERM;
	h->index = wc->next_index++;
	h->ingress_seq = seq;
	h->durable_index = journal_durable_index(wc->j);
	frame_finish(dst, h);
	struct wframe *f = &wc->frames[wc->frame_count++];
	*f = (struct wframe){.off = (uint64_t)(dst - wc->buf), .h = *h, .meta = meta_effect, .comp = comp};
	wc->buf_used += h->length;
	return f;
}

/* Common prologue of every request that appends a frame. true: room at *dst. false:
 * *r says what to return (the request was answered, or there is no room now). */
static bool need_frame(wcore *wc, uint64_t seq, const struct msg_req *req, uint64_t body_bytes,
		       uint8_t **dst, enum wcore_take *r)
{
	if (wc->replay_only) {
		/* Cannot happen (a request answered without a frame ends its batch); never
		 * append a second time: let the client retry. */
		log_warn("writer_replay_mismatch", "seq=%" PRIu64 " kind=%u", seq, req->kind);
		*r = answer(wc, seq, req, SK_EAGAIN, 0);
		return false;
	}
	if (frame_length_for_body(body_bytes) > SK_FRAME_BYTES_MAX) {
		*r = answer(wc, seq, req, SK_EINVAL, 0);
		return false;
	}
	bool full;
	*r = frame_room(wc, body_bytes, dst, &full);
	if (*r == WCORE_NO_ROOM)
		return false;
	if (full) {
		*r = answer(wc, seq, req, SK_EFULL, 0);
		return false;
	}
	return true;
}

static int32_t comp_index(const wcore *wc) { return (int32_t)wc->comp_count; }

/* A frame's timestamp: the request's ingress time, or now when it carries none. */
static uint64_t ts_of(const struct msg_req *req) { return req->now_ms ? req->now_ms : clock_real_ms(); }

/* ---- request kinds ---- */

static enum wcore_take take_dup(wcore *wc, uint64_t seq, const struct msg_req *req, uint32_t partition,
				uint64_t offset, uint64_t index)
{
	struct msg_completion *c = comp_new(wc, seq, req);
	c->flags = MSG_FLAG_DUPLICATE;
	c->partition = partition;
	c->offset = offset;
	c->index = index;
	c->count = req->record_count;
	return WCORE_TAKEN_END;
}

/* An idempotency key seen before, in this batch or in meta.db within the window? */
static bool idem_seen(wcore *wc, const struct msg_req *req, const struct record_view *rv,
		      uint32_t *part_out, uint64_t *off_out, uint64_t *index_out)
{
	struct hslot *s = hslot_find(wc, wc->idem, req->topic_id, 0, rv->idem_key,
				     (uint16_t)rv->idem_key_len, false);
	if (s != NULL) {
		*part_out = s->found_partition;
		*off_out = s->offset;
		*index_out = s->index;
		return true;
	}
	sk_err err = meta_idem_lookup(wc->m, req->topic_id, rv->idem_key, rv->idem_key_len, req->now_ms,
				      req->arg2, part_out, off_out, index_out);
	if (err != SK_OK && err != SK_ENOTFOUND) {
		log_error("writer_meta_failed", "what=idem_lookup err=%s", sk_errname(err));
		wc->fatal = true;
	}
	return err == SK_OK;
}

static enum wcore_take take_produce(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	struct wtopic *t = topic_get(wc, req->topic_id);
	struct wpart *p = t ? part_get(wc, req->topic_id, t, req->partition) : NULL;
	if (p == NULL)
		return answer(wc, seq, req, SK_ENOTFOUND, 0);
	if (!record_batch_valid(req->body, req->body_len, req->record_count) ||
	    p->next_offset > UINT64_MAX - req->record_count)
		return answer(wc, seq, req, SK_EINVAL, 0);
	size_t pos = 0;
	struct record_view rv;
	record_decode(req->body, req->body_len, &pos, &rv); /* valid: checked above */
	uint32_t dpart;
	uint64_t doff, didx;
	if (rv.idem_key_len > 0 && idem_seen(wc, req, &rv, &dpart, &doff, &didx))
		return take_dup(wc, seq, req, dpart, doff, didx);
	uint8_t *dst;
	enum wcore_take r;
	if (!need_frame(wc, seq, req, req->body_len, &dst, &r))
		return r;
	memcpy(dst + SK_FRAME_HEADER_BYTES, req->body, req->body_len);
	struct frame_header h = {.kind = FRAME_RECORD_BATCH, .topic_id = req->topic_id,
				 .partition = req->partition, .base_offset = p->next_offset,
				 .record_count = req->record_count, .body_bytes = req->body_len,
				 .timestamp_ms = ts_of(req)};
	struct wframe *f = frame_add(wc, dst, &h, seq, rv.idem_key_len > 0, comp_index(wc));
	struct msg_completion *c = comp_new(wc, seq, req);
	c->offset = p->next_offset;
	c->index = f->h.index;
	c->count = req->record_count;
	undo_push(wc, UNDO_NEXT_OFFSET, p, 0, p->next_offset);
	p->next_offset += req->record_count;
	if (rv.idem_key_len > 0) {
		struct hslot *s = hslot_find(wc, wc->idem, req->topic_id, 0, rv.idem_key,
					     (uint16_t)rv.idem_key_len, true);
		s->found_partition = req->partition;
		s->offset = c->offset;
		s->index = c->index;
	}
	return WCORE_TAKEN;
}

static struct wtopic *topic_by_name(wcore *wc, const uint8_t *name, uint16_t len, uint32_t *id_out)
{
	for (uint32_t id = 1; id < WC_TOPIC_SLOTS; id++) {
		struct wtopic *t = &wc->topics[id];
		if (t->used && t->name_len == len && memcmp(t->name, name, len) == 0) {
			*id_out = id;
			return t;
		}
	}
	return NULL;
}

static enum wcore_take take_create_topic(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	uint32_t id;
	struct wtopic *t = topic_by_name(wc, req->name, req->name_len, &id);
	if (t != NULL) {
		struct msg_completion *c = comp_new(wc, seq, req);
		c->topic_id = id;
		c->status = t->partitions == req->arg ? SK_OK : SK_ECONFLICT;
		c->current = t->partitions;
		return WCORE_TAKEN_END;
	}
	uint8_t body[SK_FRAME_TOPIC_CREATED_FIXED_BYTES + SK_TOPIC_NAME_BYTES_MAX];
	struct frame_topic_created tc = {.partitions = (uint32_t)req->arg, .name = req->name,
					 .name_len = req->name_len};
	size_t body_len;
	if (req->arg < 1 || req->arg > wc->o.partitions_max ||
	    frame_topic_created_encode(body, sizeof(body), &tc, &body_len) != SK_OK)
		return answer(wc, seq, req, SK_EINVAL, 0);
	if (wc->next_topic_id == 0 || wc->next_topic_id >= WC_TOPIC_SLOTS)
		return answer(wc, seq, req, SK_EINVAL, 0); /* SK_TOPICS_MAX reached */
	uint8_t *dst;
	enum wcore_take r;
	if (!need_frame(wc, seq, req, body_len, &dst, &r))
		return r;
	id = wc->next_topic_id;
	t = &wc->topics[id];
	t->parts = calloc(tc.partitions, sizeof(*t->parts));
	if (t->parts == NULL) {
		wc->fatal = true;
		return WCORE_NO_ROOM;
	}
	for (uint32_t i = 0; i < tc.partitions; i++)
		t->parts[i].loaded = true; /* a new topic: offsets from 0 */
	t->used = true;
	t->partitions = tc.partitions;
	t->name_len = req->name_len;
	memcpy(t->name, req->name, req->name_len);
	t->name[req->name_len] = '\0';
	undo_push(wc, UNDO_TOPIC, NULL, id, wc->next_topic_id);
	wc->next_topic_id++;
	memcpy(dst + SK_FRAME_HEADER_BYTES, body, body_len);
	struct frame_header h = {.kind = FRAME_TOPIC_CREATED, .topic_id = id, .body_bytes = (uint32_t)body_len,
				 .timestamp_ms = ts_of(req)};
	struct wframe *f = frame_add(wc, dst, &h, seq, true, comp_index(wc));
	struct msg_completion *c = comp_new(wc, seq, req);
	c->topic_id = id;
	c->flags = MSG_FLAG_CREATED;
	c->index = f->h.index;
	c->partition = 0;
	wc->topics_changed = true;
	return WCORE_TAKEN;
}

static enum wcore_take take_commit(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	struct wtopic *t = topic_get(wc, req->topic_id);
	struct wpart *p = t ? part_get(wc, req->topic_id, t, req->partition) : NULL;
	if (p == NULL)
		return answer(wc, seq, req, SK_ENOTFOUND, 0);
	if (memchr(req->name, 0, req->name_len) != NULL)
		return answer(wc, seq, req, SK_EINVAL, 0);
	/* The committed offset is the last one processed, so it must name a record
	 * that exists: committing next_offset would make the group skip the next
	 * record produced. */
	if (req->arg >= p->next_offset)
		return answer(wc, seq, req, SK_ERANGE, p->next_offset);
	struct hslot *s = hslot_find(wc, wc->commits, req->topic_id, req->partition, req->name,
				     req->name_len, false);
	uint64_t current = 0;
	bool have = s != NULL;
	if (have) {
		current = s->offset;
	} else {
		char group[SK_GROUP_NAME_BYTES_MAX + 1];
		memcpy(group, req->name, req->name_len);
		group[req->name_len] = '\0';
		sk_err err = meta_committed_offset(wc->m, group, req->topic_id, req->partition, &current);
		if (err != SK_OK && err != SK_ENOTFOUND) {
			wc->fatal = true;
			return WCORE_NO_ROOM;
		}
		have = err == SK_OK;
	}
	if (have && req->arg < current)
		return answer(wc, seq, req, SK_ECONFLICT, current);
	if (have && req->arg == current) {
		struct msg_completion *c = comp_new(wc, seq, req);
		c->offset = current;
		return WCORE_TAKEN_END;
	}
	uint8_t body[SK_FRAME_OFFSET_COMMITTED_FIXED_BYTES + SK_GROUP_NAME_BYTES_MAX];
	struct frame_offset_committed oc = {.offset = req->arg, .group = req->name, .group_len = req->name_len};
	size_t body_len;
	if (frame_offset_committed_encode(body, sizeof(body), &oc, &body_len) != SK_OK)
		return answer(wc, seq, req, SK_EINVAL, 0);
	uint8_t *dst;
	enum wcore_take r;
	if (!need_frame(wc, seq, req, body_len, &dst, &r))
		return r;
	memcpy(dst + SK_FRAME_HEADER_BYTES, body, body_len);
	struct frame_header h = {.kind = FRAME_OFFSET_COMMITTED, .topic_id = req->topic_id,
				 .partition = req->partition, .body_bytes = (uint32_t)body_len,
				 .timestamp_ms = ts_of(req)};
	struct wframe *f = frame_add(wc, dst, &h, seq, true, comp_index(wc));
	struct msg_completion *c = comp_new(wc, seq, req);
	c->offset = req->arg;
	c->index = f->h.index;
	s = hslot_find(wc, wc->commits, req->topic_id, req->partition, req->name, req->name_len, true);
	s->offset = req->arg;
	return WCORE_TAKEN;
}

/* Append a log-start frame (delete-before, retention). comp < 0: internal. */
static void add_log_start(wcore *wc, uint8_t *dst, uint32_t topic_id, struct wpart *p, uint32_t partition,
			  uint64_t log_start, uint64_t seq, int32_t comp, uint64_t now_ms)
{
	struct frame_log_start ls = {.log_start = log_start};
	size_t body_len;
	frame_log_start_encode(dst + SK_FRAME_HEADER_BYTES, SK_FRAME_LOG_START_BYTES, &ls, &body_len);
	struct frame_header h = {.kind = FRAME_LOG_START, .topic_id = topic_id, .partition = partition,
				 .body_bytes = (uint32_t)body_len, .timestamp_ms = now_ms};
	frame_add(wc, dst, &h, seq, true, comp);
	undo_push(wc, UNDO_LOG_START, p, 0, p->log_start);
	p->log_start = log_start;
	wc->topics_changed = true;
}

static enum wcore_take take_delete_before(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	struct wtopic *t = topic_get(wc, req->topic_id);
	struct wpart *p = t ? part_get(wc, req->topic_id, t, req->partition) : NULL;
	if (p == NULL)
		return answer(wc, seq, req, SK_ENOTFOUND, 0);
	if (req->arg > p->next_offset)
		return answer(wc, seq, req, SK_ERANGE, p->next_offset);
	if (req->arg <= p->log_start) {
		struct msg_completion *c = comp_new(wc, seq, req);
		c->offset = p->log_start;
		return WCORE_TAKEN_END;
	}
	uint8_t *dst;
	enum wcore_take r;
	if (!need_frame(wc, seq, req, SK_FRAME_LOG_START_BYTES, &dst, &r))
		return r;
	add_log_start(wc, dst, req->topic_id, p, req->partition, req->arg, seq, comp_index(wc), ts_of(req));
	struct msg_completion *c = comp_new(wc, seq, req);
	c->offset = req->arg;
	c->index = wc->next_index - 1;
	return WCORE_TAKEN;
}

static enum wcore_take take_retention(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	struct wtopic *t = topic_get(wc, req->topic_id);
	if (t == NULL)
		return answer(wc, seq, req, SK_ENOTFOUND, 0);
	if (req->arg > SK_RETENTION_BYTES_MAX || req->arg2 > SK_RETENTION_MS_MAX)
		return answer(wc, seq, req, SK_EINVAL, 0);
	uint8_t *dst;
	enum wcore_take r;
	if (!need_frame(wc, seq, req, SK_FRAME_RETENTION_BYTES, &dst, &r))
		return r;
	struct frame_retention rt = {.bytes = req->arg, .ms = req->arg2};
	size_t body_len;
	frame_retention_encode(dst + SK_FRAME_HEADER_BYTES, SK_FRAME_RETENTION_BYTES, &rt, &body_len);
	struct frame_header h = {.kind = FRAME_RETENTION, .topic_id = req->topic_id,
				 .body_bytes = (uint32_t)body_len, .timestamp_ms = ts_of(req)};
	struct wframe *f = frame_add(wc, dst, &h, seq, true, comp_index(wc));
	struct msg_completion *c = comp_new(wc, seq, req);
	c->index = f->h.index;
	c->partition = 0;
	/* Not undone on ENOSPC: only the retention pass reads it, and it re-reads meta. */
	t->retention_bytes = req->arg;
	t->retention_ms = req->arg2;
	wc->topics_changed = true;
	return WCORE_TAKEN;
}

static enum wcore_take take_fresh(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	switch (req->kind) {
	case MSG_REQ_PRODUCE:
		return take_produce(wc, seq, req);
	case MSG_REQ_CREATE_TOPIC:
		return take_create_topic(wc, seq, req);
	case MSG_REQ_COMMIT:
		return take_commit(wc, seq, req);
	case MSG_REQ_DELETE_BEFORE:
		return take_delete_before(wc, seq, req);
	case MSG_REQ_RETENTION:
		return take_retention(wc, seq, req);
	default:
		return answer(wc, seq, req, SK_EINVAL, 0);
	}
}

static const struct seq_ent *seq_map_find(const wcore *wc, uint64_t seq)
{
	uint32_t lo = 0, hi = wc->seq_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (wc->seq_map[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < wc->seq_count && wc->seq_map[lo].seq == seq ? &wc->seq_map[lo] : NULL;
}

/* A request whose sequence is already in the journal: answer, never append. */
static enum wcore_take take_replayed(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	wc->skipped++;
	const struct seq_ent *e = seq_map_find(wc, seq);
	if (e == NULL) {
		wc->replay_only = true;
		enum wcore_take r = take_fresh(wc, seq, req);
		wc->replay_only = false;
		return r == WCORE_NO_ROOM ? r : WCORE_TAKEN;
	}
	struct msg_completion *c = comp_new(wc, seq, req);
	c->topic_id = e->topic_id;
	c->partition = e->partition;
	c->offset = e->offset;
	c->index = e->index;
	c->count = e->count;
	c->flags = e->kind == FRAME_TOPIC_CREATED ? MSG_FLAG_CREATED : 0;
	return WCORE_TAKEN;
}

enum wcore_take wcore_take(wcore *wc, uint64_t seq, const struct msg_req *req)
{
	if (wc->fatal || wc->comp_count >= wc->o.batch_records_max)
		return WCORE_NO_ROOM;
	if (seq <= wc->max_ingress_seq)
		return take_replayed(wc, seq, req);
	return take_fresh(wc, seq, req);
}

/* ---- commit ---- */

/* ENOSPC: nothing of the batch is in the journal; answer every frame's request with
 * EFULL and forget the batch's changes. */
static void batch_failed_full(wcore *wc)
{
	undo_all(wc);
	for (uint32_t i = 0; i < wc->frame_count; i++) {
		int32_t k = wc->frames[i].comp;
		if (k < 0)
			continue;
		struct msg_completion *c = &wc->comp[k];
		c->status = SK_EFULL;
		c->flags = 0;
		c->offset = 0;
		c->index = journal_last_index(wc->j);
	}
	wc->frame_count = 0;
	wc->buf_used = 0;
	wc->next_index = journal_last_index(wc->j) + 1;
	wc->topics_changed = false;
	if (!wc->storage_full)
		log_error("writer_storage_full", "what=write");
	wc->storage_full = true;
	wc->full_since_ms = clock_mono_ms();
}

/* The batch's index entries, one pwrite per run of frames of the same partition
 * (under load most of a batch is one partition: 1 write instead of one per frame). */
static sk_err index_batch(wcore *wc, struct journal_pos start)
{
	struct index_entry run[SK_INDEX_RUN_MAX];
	uint32_t n = 0, topic = 0, part = 0;
	for (uint32_t i = 0; i <= wc->frame_count; i++) {
		const struct wframe *f = i < wc->frame_count ? &wc->frames[i] : NULL;
		if (f && f->h.kind != FRAME_RECORD_BATCH)
			continue;
		bool same = f && n > 0 && f->h.topic_id == topic && f->h.partition == part;
		if (n > 0 && (!same || n == SK_INDEX_RUN_MAX)) {
			sk_err err = index_append_run(wc->ix, topic, part, run, n);
			if (err != SK_OK) {
				log_error("writer_index_failed", "index=%" PRIu64 " err=%s", run[0].index,
					  sk_errname(err));
				return err;
			}
			n = 0;
		}
		if (!f)
			break;
		topic = f->h.topic_id;
		part = f->h.partition;
		run[n++] = (struct index_entry){.base_offset = f->h.base_offset, .index = f->h.index,
						.segment_id = start.segment_id,
						.position = start.position + f->off,
						.record_count = f->h.record_count,
						.frame_bytes = f->h.length, .timestamp_ms = f->h.timestamp_ms};
	}
	return SK_OK;
}

/* One meta transaction for the batch's control entries and idempotency keys. */
static sk_err meta_batch(wcore *wc)
{
	bool any = false;
	for (uint32_t i = 0; i < wc->frame_count && !any; i++)
		any = wc->frames[i].meta;
	if (!any)
		return SK_OK;
	sk_err err = meta_begin(wc->m);
	for (uint32_t i = 0; err == SK_OK && i < wc->frame_count; i++) {
		const struct wframe *f = &wc->frames[i];
		if (f->meta)
			err = store_apply_frame(wc->m, wc->ix, &f->h, wc->buf + f->off + SK_FRAME_HEADER_BYTES);
	}
	if (err == SK_OK)
		err = meta_set_applied_index(wc->m, wc->frames[wc->frame_count - 1].h.index);
	if (err == SK_OK)
		return meta_commit(wc->m);
	log_error("writer_meta_failed", "what=apply err=%s", sk_errname(err));
	meta_rollback(wc->m);
	return err;
}

sk_err wcore_batch_commit(wcore *wc, struct wcore_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (wc->fatal)
		return SK_EIO;
	if (wc->frame_count == 0)
		return SK_OK;
	struct journal_pos start = journal_append_pos(wc->j);
	const struct wframe *last = &wc->frames[wc->frame_count - 1];
	struct iovec iov = {.iov_base = wc->buf, .iov_len = wc->buf_used};
	sk_err err = journal_write(wc->j, &iov, 1, wc->buf_used, last->h.index, last->h.term);
	if (err == SK_EFULL) {
		batch_failed_full(wc);
		return SK_EFULL;
	}
	if (err != SK_OK)
		return SK_EIO;
	uint64_t t0 = clock_mono_ns();
	if (journal_sync(wc->j) != SK_OK)
		return SK_EIO; /* never retried: the caller exits, recovery re-reads the disk */
	st->last_fsync_ns = clock_mono_ns() - t0;
	if (index_batch(wc, start) != SK_OK || meta_batch(wc) != SK_OK)
		return SK_EIO;
	for (uint32_t i = 0; i < wc->frame_count; i++) {
		const struct wframe *f = &wc->frames[i];
		st->last_records += f->h.record_count;
		if (f->h.ingress_seq > wc->max_ingress_seq)
			wc->max_ingress_seq = f->h.ingress_seq;
	}
	if (wc->storage_full)
		log_info("writer_storage_ok", "index=%" PRIu64, last->h.index);
	wc->storage_full = false;
	st->last_bytes = wc->buf_used;
	st->last_frames = wc->frame_count;
	st->topics_changed = wc->topics_changed;
	wc->cp_bytes += wc->buf_used;
	wc->cp_frames += wc->frame_count;
	return SK_OK;
}

/* ---- housekeeping ---- */

sk_err wcore_checkpoint_if_due(wcore *wc, bool force)
{
	if (wc->fatal)
		return SK_EIO;
	uint64_t now = clock_mono_ms();
	bool due = wc->cp_bytes >= WC_CHECKPOINT_BYTES || wc->cp_frames >= WC_CHECKPOINT_FRAMES ||
		   wc->cp_rolled;
	if (!(force && wc->cp_frames > 0) && !(due && now - wc->cp_last_ms >= WC_CHECKPOINT_MS_MIN))
		return SK_OK;
	wc->cp_last_ms = now;
	sk_err err = store_checkpoint(wc->j, wc->m, wc->ix, wc->max_ingress_seq);
	if (err != SK_OK) {
		log_error("writer_checkpoint_failed", "err=%s", sk_errname(err));
		return err;
	}
	wc->cp_segment = journal_append_pos(wc->j).segment_id;
	wc->cp_bytes = 0;
	wc->cp_frames = 0;
	wc->cp_rolled = false;
	return SK_OK;
}

/* ---- retention ----
 * Log starts move by log-start frames (the same control entry delete-before
 * writes, so a cluster replicates them too); whole segments are removed only after
 * those frames are durable and applied, so a reader never finds the start of a
 * partition in a segment that is gone. Per partition, the new start is the largest
 * of: the first offset in the segments kept ([storage] limits), the first offset
 * not older than the topic's retention_ms, the first offset of the newest frames
 * within the topic's retention_bytes. Read from the index files (layout in
 * store/index.h); the writer appended them itself, so the page cache holds them. */

#define WC_IDX_CHUNK 256
#define WC_IDX_WALK_MAX (4u * 1024 * 1024) /* entries walked back for a byte limit */

struct idx_file {
	int fd;
	uint64_t n;
};

static bool idx_open(const wcore *wc, uint32_t topic_id, uint32_t partition, struct idx_file *f)
{
	char path[SK_PATH_BYTES_MAX + 64];
	snprintf(path, sizeof(path), "%s/index/%" PRIu32 "/%" PRIu32 ".idx", wc->data_dir, topic_id, partition);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return false;
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		close(f->fd);
		return false;
	}
	f->n = (uint64_t)st.st_size / SK_INDEX_ENTRY_BYTES;
	return true;
}

static bool idx_entry(const struct idx_file *f, uint64_t i, struct index_entry *e)
{
	uint8_t b[SK_INDEX_ENTRY_BYTES];
	if (pread(f->fd, b, sizeof(b), (off_t)(i * SK_INDEX_ENTRY_BYTES)) != (ssize_t)sizeof(b))
		return false;
	index_entry_decode(b, e);
	return true;
}

/* First entry whose segment_id >= seg (or timestamp >= ts): both rise with the offset.
 * Returns f->n when none. */
static uint64_t idx_first(const struct idx_file *f, uint64_t seg, uint64_t ts)
{
	uint64_t lo = 0, hi = f->n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct index_entry e;
		if (!idx_entry(f, mid, &e))
			return f->n;
		if (e.segment_id >= seg && e.timestamp_ms >= ts)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* First entry of the newest ones whose frames hold at most bytes. */
static uint64_t idx_keep_bytes(const struct idx_file *f, uint64_t bytes)
{
	uint8_t b[WC_IDX_CHUNK * SK_INDEX_ENTRY_BYTES];
	uint64_t sum = 0, i = f->n, walked = 0;
	while (i > 0 && walked < WC_IDX_WALK_MAX) {
		uint64_t n = i < WC_IDX_CHUNK ? i : WC_IDX_CHUNK;
		ssize_t got = pread(f->fd, b, n * SK_INDEX_ENTRY_BYTES, (off_t)((i - n) * SK_INDEX_ENTRY_BYTES));
		if (got != (ssize_t)(n * SK_INDEX_ENTRY_BYTES))
			return 0;
		for (uint64_t k = n; k-- > 0;) {
			struct index_entry e;
			index_entry_decode(b + k * SK_INDEX_ENTRY_BYTES, &e);
			sum += e.frame_bytes;
			if (sum > bytes)
				return i - n + k + 1;
		}
		i -= n;
		walked += n;
	}
	return 0;
}

/* The log start this partition should have; <= its next offset. */
static uint64_t wanted_start(const wcore *wc, uint32_t topic_id, const struct wtopic *t, uint32_t partition,
			     const struct wpart *p, uint64_t keep_segment, uint64_t now_ms)
{
	struct idx_file f;
	if (!idx_open(wc, topic_id, partition, &f))
		return p->log_start;
	uint64_t first = 0; /* index of the first entry to keep */
	if (keep_segment > 0)
		first = idx_first(&f, keep_segment, 0);
	if (t->retention_ms > 0 && now_ms > t->retention_ms) {
		uint64_t k = idx_first(&f, 0, now_ms - t->retention_ms);
		first = k > first ? k : first;
	}
	if (t->retention_bytes > 0) {
		uint64_t k = idx_keep_bytes(&f, t->retention_bytes);
		first = k > first ? k : first;
	}
	uint64_t start = p->next_offset;
	struct index_entry e;
	if (first < f.n && idx_entry(&f, first, &e))
		start = e.base_offset;
	close(f.fd);
	return start > p->log_start ? start : p->log_start;
}

/* The segments [storage] limits say to drop: the first one kept, or 0 for none. */
static uint64_t segments_to_keep(wcore *wc, uint64_t retention_bytes, uint64_t retention_ms, uint64_t now_ms)
{
	static struct journal_segment_info segs[4096];
	size_t n;
	journal_segments(wc->j, segs, sizeof(segs) / sizeof(segs[0]), &n);
	if (n > sizeof(segs) / sizeof(segs[0]))
		n = sizeof(segs) / sizeof(segs[0]);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += segs[i].file_bytes;
	size_t k = 0;
	/* Never the tail, never past the checkpoint (recovery starts there). */
	while (k + 1 < n && segs[k + 1].segment_id <= wc->cp_segment) {
		bool over = retention_bytes > 0 && total > retention_bytes;
		bool old = retention_ms > 0 && segs[k].mtime_ms + retention_ms < now_ms;
		if (!over && !old)
			break;
		total -= segs[k].file_bytes;
		k++;
	}
	return k > 0 ? segs[k].segment_id : 0;
}

/* Append one internal log-start frame, committing the batch first if it is full. */
static sk_err retention_frame(wcore *wc, uint32_t topic_id, struct wpart *p, uint32_t partition,
			      uint64_t start, uint64_t now_ms)
{
	struct wcore_stats st;
	for (int attempt = 0; attempt < 2; attempt++) {
		uint8_t *dst;
		bool full;
		enum wcore_take r = frame_room(wc, SK_FRAME_LOG_START_BYTES, &dst, &full);
		if (full)
			return SK_EFULL;
		if (r == WCORE_TAKEN) {
			add_log_start(wc, dst, topic_id, p, partition, start, 0, -1, now_ms);
			return SK_OK;
		}
		if (wc->fatal)
			return SK_EIO;
		sk_err err = wcore_batch_commit(wc, &st);
		if (err != SK_OK)
			return err;
		wcore_batch_begin(wc);
	}
	return SK_EIO;
}

sk_err wcore_retention(wcore *wc, uint64_t retention_bytes, uint64_t retention_ms, uint64_t now_ms,
		       bool *changed_out)
{
	*changed_out = false;
	uint64_t keep = segments_to_keep(wc, retention_bytes, retention_ms, now_ms);
	struct wcore_stats st = {0};
	sk_err err = SK_OK;
	wcore_batch_begin(wc);
	for (uint32_t id = 1; err == SK_OK && id < WC_TOPIC_SLOTS; id++) {
		struct wtopic *t = &wc->topics[id];
		if (!t->used || (keep == 0 && t->retention_bytes == 0 && t->retention_ms == 0))
			continue;
		for (uint32_t part = 0; err == SK_OK && part < t->partitions; part++) {
			struct wpart *p = part_get(wc, id, t, part);
			uint64_t start = wanted_start(wc, id, t, part, p, keep, now_ms);
			if (start > p->log_start)
				err = retention_frame(wc, id, p, part, start, now_ms);
		}
	}
	if (err == SK_OK)
		err = wcore_batch_commit(wc, &st);
	*changed_out = st.topics_changed || wc->frame_count > 0;
	if (err != SK_OK) {
		if (err == SK_EFULL)
			batch_failed_full(wc);
		return err == SK_EFULL ? SK_OK : err; /* retried at the next pass */
	}
	if (keep > 0)
		err = journal_remove_before(wc->j, keep);
	return err;
}
