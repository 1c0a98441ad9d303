/* Journal recovery (see store/recovery.h for the contract).
 *
 * The scan starts at meta's checkpoint (segment, position, index, term) and
 * accepts frames while they decode (frame_decode: CRC, lengths, body) and continue
 * the log: index = previous + 1, term >= previous term. A segment ends at the first
 * header that is all zero when the bytes after it are zero too; the next segment
 * must then be named exactly the next index (a gap is a missing segment: damage).
 *
 * At the first bad frame (index E expected, at byte P), torn tail or damage?
 *   - The writer has at most one batch unsynced at any time (every batch is synced
 *     before the next is written, and recovery syncs what it accepts before the
 *     writer writes again). A batch written anywhere but at the start of a segment is
 *     at most SK_JOURNAL_BATCH_BYTES_MAX (a bigger frame starts a segment). Each frame
 *     carries the writer's durable index when it was written.
 *   - Frame E's batch began at or before P, so the batch after it begins less than
 *     SK_JOURNAL_BATCH_BYTES_MAX after P (anywhere in the segment when P is 0). If a
 *     valid frame starting in that window, or the first frame of a later segment,
 *     carries durable_index >= E, frame E had been fdatasync'd before that frame was
 *     written: the bad bytes sit before the durable point. That is damage: stop with
 *     the file and byte offset, truncate nothing.
 *   - Otherwise the bytes from P on were never durable: a torn tail. Zero them (up
 *     to the last non-zero byte in the window), remove any later segment (newest
 *     first), fdatasync, and only then accept writes.
 * Bytes beyond the window are zero by construction (segments are zero-filled before
 * use and nothing is written past the unsynced batch), so they are not read: the
 * cost of recovery is bounded by the checkpoint interval plus one window (8 MiB of
 * zeros checked at memory speed).
 *
 * Frames accepted by the scan may have been in the page cache only (the writer was
 * killed between its write and its fdatasync): every scanned segment is synced
 * before the journal is handed its tail, so nothing later can be durable while
 * they are not. */
#include "store/recovery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "store/journal_internal.h"
#include "store/record.h"
#include "store/store_assert.h"

struct scan {
	journal *j;
	recovery_frame_cb cb;
	void *arg;
	struct recovery_result *res;
	char *why;
	size_t why_len;
	uint64_t expect;    /* index the next frame must have */
	uint64_t last_term;
	size_t seg;         /* index into j->segs being scanned */
	uint64_t pos;
};

static sk_err damage(struct scan *s, uint64_t seg_id, uint64_t pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static sk_err damage(struct scan *s, uint64_t seg_id, uint64_t pos, const char *fmt, ...)
{
	char path[SK_PATH_BYTES_MAX + 32], reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(s->why, s->why_len, "%s at byte %" PRIu64 ": %s",
		 journal_segment_path(s->j, seg_id, path, sizeof(path)), pos, reason);
	return SK_ECORRUPT;
}

/* True when n bytes at p are all zero. Word-wise, so a window of tens of MiB of
 * zeros (the normal end of a preallocated segment) costs milliseconds. */
static bool all_zero(const uint8_t *p, size_t n)
{
	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		if (*p++ != 0)
			return false;
		n--;
	}
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t words = n / 8;
	for (size_t i = 0; i + 8 <= words; i += 8) {
		if ((w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7]) != 0)
			return false;
	}
	for (size_t i = words & ~(size_t)7; i < words; i++)
		if (w[i] != 0)
			return false;
	for (size_t i = words * 8; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* What lies in [from, end) after a bad frame: the end of the last non-zero byte and
 * whether a valid frame there says frame `expect` was durable. */
struct after_bad {
	uint64_t nonzero_end; /* 0: all zero */
	bool durable_after;
	uint64_t durable_pos;
	uint64_t durable_index;
};

#define LOOK_BLOCK_BYTES 4096

/* Frames may start in [from, end) and run on to len (the segment's end). */
static void look_after(const uint8_t *map, uint64_t len, uint64_t from, uint64_t end, uint64_t expect,
		       struct after_bad *ab)
{
	memset(ab, 0, sizeof(*ab));
	for (uint64_t p = from; p < end;) {
		/* Whole zero blocks are skipped at memory speed. */
		uint64_t block_end = (p / LOOK_BLOCK_BYTES + 1) * LOOK_BLOCK_BYTES;
		if (block_end > end)
			block_end = end;
		if (all_zero(map + p, block_end - p)) {
			p = block_end;
			continue;
		}
		for (; p < block_end; p += SK_FRAME_ALIGN) {
			uint64_t n = end - p < SK_FRAME_ALIGN ? end - p : SK_FRAME_ALIGN;
			if (all_zero(map + p, n))
				continue;
			ab->nonzero_end = p + n;
			struct frame_header h;
			uint32_t length;
			if (!frame_header_plausible(map + p, len - p, &length))
				continue;
			if (frame_decode(map + p, len - p, &h, NULL) == SK_OK && h.durable_index >= expect) {
				ab->durable_after = true;
				ab->durable_pos = p;
				ab->durable_index = h.durable_index;
				return;
			}
		}
	}
}

/* Does a segment after s->seg start with a valid frame written after frame expect was durable? */
static bool later_segment_durable(struct scan *s, uint64_t *seg_out)
{
	for (size_t k = s->seg + 1; k < s->j->seg_count; k++) {
		size_t len;
		sk_err err;
		const uint8_t *map = journal_map_segment(s->j, s->j->segs[k].id, &len, &err);
		struct frame_header h;
		bool durable = map != NULL && frame_decode(map, len, &h, NULL) == SK_OK &&
			       h.durable_index >= s->expect;
		journal_unmap_segment(map, len);
		if (durable) {
			*seg_out = s->j->segs[k].id;
			return true;
		}
	}
	return false;
}

/* Cut a torn tail at s->pos of the current segment: zero what was written there,
 * drop later segments (newest first), sync. */
static sk_err cut_tail(struct scan *s, uint64_t nonzero_end)
{
	journal *j = s->j;
	uint64_t id = j->segs[s->seg].id;
	while (j->seg_count > s->seg + 1) {
		uint64_t later = j->segs[j->seg_count - 1].id;
		log_warn("journal_segment_dropped", "segment=%020" PRIu64 " reason=after_torn_tail", later);
		if (journal_unlink_segment(j, later) != SK_OK)
			return SK_EIO;
	}
	if (journal_sync_dir(j) != SK_OK)
		return SK_EIO;
	if (nonzero_end > s->pos) {
		int fd = journal_open_segment(j, id, true);
		if (fd < 0)
			return SK_EIO;
		sk_err err = journal_zero_range(j, fd, s->pos, nonzero_end);
		j->io->close(fd);
		if (err != SK_OK)
			return err;
	}
	s->res->tail_cut = nonzero_end > s->pos;
	s->res->cut_segment = id;
	s->res->cut_position = s->pos;
	s->res->cut_bytes = nonzero_end > s->pos ? nonzero_end - s->pos : 0;
	if (s->res->tail_cut)
		log_warn("journal_torn_tail_cut", "segment=%020" PRIu64 " position=%" PRIu64 " bytes=%" PRIu64
			 " next_index=%" PRIu64, id, s->pos, s->res->cut_bytes, s->expect);
	return SK_OK;
}

enum seg_end { SEG_CLEAN_END, SEG_TORN_END };

/* The frame at s->pos is not the next one. Decide: clean end, torn tail, or damage. */
static sk_err classify_bad(struct scan *s, const uint8_t *map, size_t len, const char *why,
			   enum seg_end *end_out)
{
	uint64_t id = s->j->segs[s->seg].id;
	uint64_t window_end = len;
	if (s->pos > 0 && window_end - s->pos > SK_JOURNAL_BATCH_BYTES_MAX)
		window_end = s->pos + SK_JOURNAL_BATCH_BYTES_MAX;
	struct after_bad ab;
	look_after(map, len, s->pos, window_end, s->expect, &ab);
	if (ab.durable_after)
		return damage(s, id, s->pos, "%s (index %" PRIu64 " expected; the frame at byte %" PRIu64
			      " was written after index %" PRIu64 " was durable)",
			      why, s->expect, ab.durable_pos, ab.durable_index);
	if (ab.nonzero_end == 0) {
		*end_out = SEG_CLEAN_END;
		return SK_OK;
	}
	uint64_t later;
	if (later_segment_durable(s, &later))
		return damage(s, id, s->pos, "%s (index %" PRIu64 " expected; segment %020" PRIu64
			      " holds frames written after it was durable)", why, s->expect, later);
	*end_out = SEG_TORN_END;
	return cut_tail(s, ab.nonzero_end);
}

static sk_err accept_frame(struct scan *s, const struct frame_header *h, const uint8_t *frame)
{
	struct journal_pos pos = {.segment_id = s->j->segs[s->seg].id, .position = s->pos};
	if (s->cb != NULL) {
		sk_err err = s->cb(s->arg, h, frame + SK_FRAME_HEADER_BYTES, pos);
		if (err != SK_OK) {
			snprintf(s->why, s->why_len, "applying frame index %" PRIu64 ": %s", h->index,
				 sk_strerror(err));
			return err;
		}
	}
	s->pos += h->length;
	s->expect = h->index + 1;
	s->last_term = h->term;
	s->res->last_index = h->index;
	s->res->last_term = h->term;
	if (h->ingress_seq > s->res->max_ingress_seq)
		s->res->max_ingress_seq = h->ingress_seq;
	s->res->frames++;
	s->res->bytes += h->length;
	return SK_OK;
}

/* Scan the current segment from s->pos. *end_out says how it ended. */
static sk_err scan_segment(struct scan *s, enum seg_end *end_out)
{
	uint64_t id = s->j->segs[s->seg].id;
	size_t len;
	sk_err err;
	const uint8_t *map = journal_map_segment(s->j, id, &len, &err);
	if (err != SK_OK)
		return damage(s, id, 0, "cannot map the segment: %s", sk_strerror(err));
	if (s->pos > len) {
		journal_unmap_segment(map, len);
		return damage(s, id, s->pos, "checkpoint position past the end of the file (%zu bytes)", len);
	}
	for (;;) {
		if (s->pos == len) {
			*end_out = SEG_CLEAN_END;
			break;
		}
		struct frame_header h;
		const char *why = NULL;
		char buf[96];
		if (frame_decode(map + s->pos, len - s->pos, &h, &why) == SK_OK) {
			if (h.index == s->expect && h.term >= s->last_term) {
				err = accept_frame(s, &h, map + s->pos);
				if (err != SK_OK)
					break;
				continue;
			}
			snprintf(buf, sizeof(buf), "frame index %" PRIu64 " term %" PRIu64
				 " does not continue the log (term %" PRIu64 ")", h.index, h.term, s->last_term);
			why = buf;
		}
		err = classify_bad(s, map, len, why, end_out);
		break;
	}
	journal_unmap_segment(map, len);
	return err;
}

/* Make every frame the scan accepted durable before anything new is written. */
static sk_err sync_scanned(journal *j, size_t first_seg)
{
	for (size_t k = first_seg; k < j->seg_count; k++) {
		int fd = journal_open_segment(j, j->segs[k].id, true);
		if (fd < 0)
			return SK_EIO;
		int rc = j->io->fdatasync(fd);
		j->io->close(fd);
		if (rc != 0) {
			log_error("journal_recovery_sync_failed", "segment=%020" PRIu64 " errno=%d",
				  j->segs[k].id, errno);
			return SK_EIO;
		}
	}
	return SK_OK;
}

/* Finish a raft truncation that was interrupted; the checkpoint may point past it. */
static sk_err finish_intent(journal *j, struct meta_checkpoint *cp, struct recovery_result *res)
{
	bool present = false;
	uint64_t index = 0;
	sk_err err = journal_intent_read(j, &present, &index);
	if (err != SK_OK || !present)
		return err;
	uint64_t tail_id, pos, term;
	err = journal_cut_after(j, index, &tail_id, &pos, &term);
	if (err == SK_OK)
		err = journal_intent_clear(j);
	if (err != SK_OK)
		return err;
	if (cp->index > index)
		memset(cp, 0, sizeof(*cp)); /* scan it all again: rare (raft only) */
	res->truncation_finished = true;
	log_warn("journal_truncation_finished", "index=%" PRIu64, index);
	return SK_OK;
}

static sk_err start_point(struct scan *s, const struct meta_checkpoint *cp)
{
	journal *j = s->j;
	if (cp->segment_id == 0) {
		s->seg = 0;
		s->pos = 0;
		s->expect = j->segs[0].id;
		s->last_term = 0;
		return SK_OK;
	}
	for (size_t k = 0; k < j->seg_count; k++) {
		if (j->segs[k].id != cp->segment_id)
			continue;
		s->seg = k;
		s->pos = cp->position;
		s->expect = cp->index + 1;
		s->last_term = cp->term;
		s->res->last_index = cp->index;
		s->res->last_term = cp->term;
		s->res->max_ingress_seq = cp->ingress_seq;
		return SK_OK;
	}
	return damage(s, cp->segment_id, cp->position, "the checkpoint's segment is missing");
}

/* Walk the segments from the start point; on return s->seg / s->pos is the tail. */
static sk_err scan_all(struct scan *s)
{
	journal *j = s->j;
	for (;;) {
		uint64_t id = j->segs[s->seg].id;
		if (s->pos == 0 && id != s->expect)
			return damage(s, id, 0, "segment starts at index %" PRIu64 ", expected %" PRIu64 "%s",
				      id, s->expect, id > s->expect ? " (missing segment)" : " (overlap)");
		enum seg_end end = SEG_CLEAN_END;
		sk_err err = scan_segment(s, &end);
		if (err != SK_OK)
			return err;
		if (end == SEG_TORN_END || s->seg + 1 == j->seg_count)
			return SK_OK;
		s->seg++;
		s->pos = 0;
	}
}

sk_err journal_recover(journal *j, const struct meta_checkpoint *cp_in, recovery_frame_cb cb, void *arg,
		       struct recovery_result *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	snprintf(why, why_len, "ok");
	struct meta_checkpoint cp = *cp_in;
	sk_err err = finish_intent(j, &cp, out);
	if (err != SK_OK) {
		snprintf(why, why_len, "%s/%s: cannot finish the truncation: %s", j->dir,
			 JOURNAL_INTENT_NAME, sk_strerror(err));
		return err;
	}
	if (j->seg_count == 0) {
		if (cp.index != 0) {
			snprintf(why, why_len, "%s: no segment, but the checkpoint is at index %" PRIu64,
				 j->dir, cp.index);
			return SK_ECORRUPT;
		}
		err = journal_create_first(j, 1);
		return err == SK_OK ? journal_set_tail(j, 1, 0, 0, 0) : err;
	}
	struct scan s = {.j = j, .cb = cb, .arg = arg, .res = out, .why = why, .why_len = why_len};
	uint64_t t0 = clock_mono_ns();
	err = start_point(&s, &cp);
	size_t first_seg = s.seg;
	if (err == SK_OK)
		err = scan_all(&s);
	uint64_t t1 = clock_mono_ns();
	out->scan_ns = t1 - t0;
	if (err == SK_OK)
		err = sync_scanned(j, first_seg);
	out->sync_ns = clock_mono_ns() - t1;
	if (err == SK_OK)
		err = journal_set_tail(j, j->segs[s.seg].id, s.pos, out->last_index, out->last_term);
	if (err == SK_EIO && why[0] == 'o')
		snprintf(why, why_len, "%s: I/O error during recovery", j->dir);
	return err;
}

/* ---- meta effects ---- */

static void copy_name(char *out, size_t cap, const uint8_t *name, size_t len)
{
	STORE_ASSERT(len < cap);
	memcpy(out, name, len);
	out[len] = '\0';
}

static sk_err apply_record_batch(meta *m, const struct frame_header *h, const uint8_t *body)
{
	size_t pos = 0;
	struct record_view rv;
	if (record_decode(body, h->body_bytes, &pos, &rv) != SK_OK)
		return SK_ECORRUPT; /* frame_decode checked it: cannot happen */
	if (rv.idem_key_len == 0)
		return SK_OK;
	return meta_idem_put(m, h->topic_id, rv.idem_key, rv.idem_key_len, h->partition, h->base_offset,
			     h->index, h->timestamp_ms);
}

sk_err store_apply_frame(meta *m, index_set *ix, const struct frame_header *h, const uint8_t *body)
{
	char name[SK_TOPIC_NAME_BYTES_MAX + SK_GROUP_NAME_BYTES_MAX + 2];
	struct frame_topic_created tc;
	struct frame_offset_committed oc;
	struct frame_log_start ls;
	struct frame_retention rt;
	sk_err err;
	switch (h->kind) {
	case FRAME_RECORD_BATCH:
		return apply_record_batch(m, h, body);
	case FRAME_TOPIC_CREATED:
		if (frame_topic_created_decode(body, h->body_bytes, &tc) != SK_OK)
			return SK_ECORRUPT;
		copy_name(name, sizeof(name), tc.name, tc.name_len);
		return meta_apply_topic_created(m, h->topic_id, name, tc.partitions, h->index);
	case FRAME_OFFSET_COMMITTED:
		if (frame_offset_committed_decode(body, h->body_bytes, &oc) != SK_OK)
			return SK_ECORRUPT;
		copy_name(name, sizeof(name), oc.group, oc.group_len);
		return meta_apply_offset_commit(m, name, h->topic_id, h->partition, oc.offset, h->index);
	case FRAME_LOG_START:
		if (frame_log_start_decode(body, h->body_bytes, &ls) != SK_OK)
			return SK_ECORRUPT;
		err = meta_apply_log_start(m, h->topic_id, h->partition, ls.log_start, h->index);
		if (err == SK_OK && ix != NULL)
			err = index_trim_before(ix, h->topic_id, h->partition, ls.log_start);
		return err;
	case FRAME_RETENTION:
		if (frame_retention_decode(body, h->body_bytes, &rt) != SK_OK)
			return SK_ECORRUPT;
		return meta_apply_retention(m, h->topic_id, rt.bytes, rt.ms, h->index);
	default:
		return SK_OK; /* membership: the raft worker's business */
	}
}

/* ---- full recovery ----
 * Index entries: the previous writer appended an entry for every record batch
 * right after its fdatasync, so after a SIGKILL the index files (page cache) already
 * hold the frames after the checkpoint. Appending them again would cost a write per
 * frame, so the scan appends only what a partition's index lacks (its next offset is
 * below the frame's), and once the scan is done every entry past the journal's new
 * end is dropped. An index that disagrees (a frame starting past the index's next
 * offset, or inside an entry) makes the scan start over the slow, certain way: the
 * index cut back to the checkpoint (whose entries were synced) and every frame after
 * it appended. */

struct store_scan {
	meta *m;
	index_set *ix;
	uint64_t applied;
	bool index_fast;     /* skip entries the index already holds */
	bool index_mismatch; /* the fast path found an index that disagrees */
	recovery_frame_cb extra;
	void *extra_arg;
};

static sk_err index_frame(struct store_scan *ss, const struct frame_header *h, struct journal_pos pos)
{
	if (ss->index_fast) {
		uint64_t next = index_next_offset(ss->ix, h->topic_id, h->partition);
		if (h->base_offset + h->record_count <= next)
			return SK_OK; /* indexed before the crash */
		if (h->base_offset != next) {
			ss->index_mismatch = true;
			return SK_EAGAIN;
		}
	}
	struct index_entry e = {.base_offset = h->base_offset, .index = h->index,
				.segment_id = pos.segment_id, .position = pos.position,
				.record_count = h->record_count, .frame_bytes = h->length,
				.timestamp_ms = h->timestamp_ms};
	return index_append(ss->ix, h->topic_id, h->partition, &e);
}

static sk_err store_frame_cb(void *arg, const struct frame_header *h, const uint8_t *body,
			     struct journal_pos pos)
{
	struct store_scan *ss = arg;
	sk_err err;
	if (h->kind == FRAME_RECORD_BATCH) {
		err = index_frame(ss, h, pos);
		if (err != SK_OK)
			return err;
	}
	if (h->index > ss->applied) {
		err = store_apply_frame(ss->m, ss->ix, h, body);
		if (err != SK_OK)
			return err;
	}
	return ss->extra ? ss->extra(ss->extra_arg, h, body, pos) : SK_OK;
}

/* One scan inside one meta transaction; the transaction is left open on success. */
static sk_err scan_pass(journal *j, meta *m, const struct meta_checkpoint *cp, struct store_scan *ss,
			struct recovery_result *out, char *why, size_t why_len)
{
	sk_err err = meta_begin(m);
	if (err != SK_OK)
		return err;
	err = journal_recover(j, cp, store_frame_cb, ss, out, why, why_len);
	if (err != SK_OK)
		meta_rollback(m);
	return err;
}

sk_err store_recover(journal *j, meta *m, index_set *ix, recovery_frame_cb extra, void *extra_arg,
		     struct recovery_result *out, char *why, size_t why_len)
{
	struct meta_checkpoint cp;
	struct store_scan ss = {.m = m, .ix = ix, .index_fast = true, .extra = extra, .extra_arg = extra_arg};
	snprintf(why, why_len, "meta.db or index I/O error");
	uint64_t t0 = clock_mono_ns();
	sk_err err = meta_checkpoint_get(m, &cp);
	if (err == SK_OK)
		err = meta_applied_index(m, &ss.applied);
	if (err != SK_OK)
		return err;
	uint64_t t1 = clock_mono_ns();
	err = scan_pass(j, m, &cp, &ss, out, why, why_len);
	if (err == SK_EAGAIN && ss.index_mismatch) {
		log_warn("index_rebuild", "why=index disagrees with the journal after the checkpoint "
			 "checkpoint_index=%" PRIu64, cp.index);
		ss.index_fast = false;
		err = index_truncate_after(ix, cp.index);
		if (err == SK_OK)
			err = scan_pass(j, m, &cp, &ss, out, why, why_len);
	}
	out->open_ns = t1 - t0;
	if (err != SK_OK)
		return err;
	uint64_t t2 = clock_mono_ns();
	err = index_truncate_after(ix, out->last_index); /* entries of frames cut or never durable */
	out->index_truncate_ns = clock_mono_ns() - t2;
	uint64_t t3 = clock_mono_ns();
	if (err == SK_OK && ss.applied > out->last_index) {
		snprintf(why, why_len, "meta.db applied index %" PRIu64 " is past the end of the journal "
			 "(index %" PRIu64 "): journal frames are missing", ss.applied, out->last_index);
		err = SK_ECORRUPT;
	}
	if (err == SK_OK && out->last_index > ss.applied)
		err = meta_set_applied_index(m, out->last_index);
	if (err == SK_OK)
		err = meta_commit(m);
	else
		meta_rollback(m);
	out->meta_commit_ns = clock_mono_ns() - t3;
	return err;
}

sk_err store_checkpoint(journal *j, meta *m, index_set *ix, uint64_t max_ingress_seq)
{
	STORE_ASSERT(journal_durable_index(j) == journal_last_index(j));
	struct journal_pos pos = journal_append_pos(j);
	struct meta_checkpoint cp = {.segment_id = pos.segment_id, .position = pos.position,
				     .index = journal_last_index(j), .term = journal_last_term(j),
				     .ingress_seq = max_ingress_seq};
	sk_err err = index_sync(ix);
	if (err != SK_OK)
		return err;
	err = meta_begin(m);
	if (err != SK_OK)
		return err;
	err = meta_checkpoint_set(m, &cp);
	uint64_t applied = 0;
	if (err == SK_OK)
		err = meta_applied_index(m, &applied);
	if (err == SK_OK && cp.index > applied)
		err = meta_set_applied_index(m, cp.index);
	if (err != SK_OK) {
		meta_rollback(m);
		return err;
	}
	return meta_commit(m);
}
