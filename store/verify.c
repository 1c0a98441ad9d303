/* Offline journal verification (store/verify.h).
 *
 * Walks every segment from offset 0 (not from the checkpoint: this is the full
 * check recovery skips for speed) with the same rules as recovery:
 *   - every frame passes frame_decode() and continues the log (index + 1, term not
 *     decreasing); segments are named by their first index with no gap;
 *   - a segment ends at a zero header followed only by zeros;
 *   - per partition, record-batch offsets are dense (each base_offset is the end of
 *     the previous batch; from 0 when the journal still starts at index 1);
 *   - record batches name a topic created earlier, with the partition in range
 *     (checked when the journal still starts at index 1);
 *   - meta.db, when present: its checkpoint is a frame boundary and its applied
 *     index is not past the end of the journal.
 * The first problem is printed with its file and byte offset; the walk then goes on
 * with the next segment so the counts cover everything readable. */
#include "store/verify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/frame.h"
#include "store/journal_internal.h"
#include "store/meta_write.h"

struct vpart {
	bool used;
	uint32_t topic_id;
	uint32_t partition;
	uint64_t first_offset;
	uint64_t next_offset;
	uint64_t records;
	uint64_t frames;
};

struct vtopic {
	uint32_t id;
	uint32_t partitions;
};

struct verify {
	journal *j;
	FILE *out;
	bool from_start; /* the journal still starts at index 1 */
	uint64_t expect;
	uint64_t last_term;
	uint64_t frames;
	uint64_t bytes;
	uint64_t kind_frames[FRAME_KIND_MAX + 1];
	uint64_t problems;
	char first_problem[SK_PATH_BYTES_MAX + 256];
	struct vpart *parts; /* open addressing, power-of-two size */
	size_t part_slots;
	size_t part_used;
	struct vtopic *topics;
	size_t topic_count;
	size_t topic_cap;
	/* meta.db's checkpoint, to be matched with a frame boundary */
	bool have_cp;
	struct meta_checkpoint cp;
	bool cp_seen;
	uint64_t applied;
};

static void problem(struct verify *v, uint64_t seg_id, uint64_t pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void problem(struct verify *v, uint64_t seg_id, uint64_t pos, const char *fmt, ...)
{
	if (v->problems++ > 0)
		return;
	char path[SK_PATH_BYTES_MAX + 32], reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(v->first_problem, sizeof(v->first_problem), "%s at byte %" PRIu64 ": %s",
		 journal_segment_path(v->j, seg_id, path, sizeof(path)), pos, reason);
}

static size_t part_hash(uint32_t t, uint32_t p)
{
	uint64_t k = ((uint64_t)t << 32) | p;
	k *= 0x9e3779b97f4a7c15ull;
	return (size_t)(k >> 17);
}

static bool parts_grow(struct verify *v)
{
	size_t slots = v->part_slots ? v->part_slots * 2 : 1024;
	struct vpart *np = calloc(slots, sizeof(*np));
	if (np == NULL)
		return false;
	for (size_t i = 0; i < v->part_slots; i++) {
		if (!v->parts[i].used)
			continue;
		size_t k = part_hash(v->parts[i].topic_id, v->parts[i].partition) & (slots - 1);
		while (np[k].used)
			k = (k + 1) & (slots - 1);
		np[k] = v->parts[i];
	}
	free(v->parts);
	v->parts = np;
	v->part_slots = slots;
	return true;
}

static struct vpart *part_get(struct verify *v, uint32_t t, uint32_t p, bool *is_new)
{
	if ((v->part_used + 1) * 2 > v->part_slots && !parts_grow(v))
		return NULL;
	size_t k = part_hash(t, p) & (v->part_slots - 1);
	while (v->parts[k].used) {
		if (v->parts[k].topic_id == t && v->parts[k].partition == p) {
			*is_new = false;
			return &v->parts[k];
		}
		k = (k + 1) & (v->part_slots - 1);
	}
	v->parts[k] = (struct vpart){.used = true, .topic_id = t, .partition = p};
	v->part_used++;
	*is_new = true;
	return &v->parts[k];
}

static const struct vtopic *topic_find(const struct verify *v, uint32_t id)
{
	for (size_t i = 0; i < v->topic_count; i++)
		if (v->topics[i].id == id)
			return &v->topics[i];
	return NULL;
}

static void topic_add(struct verify *v, uint64_t seg_id, uint64_t pos, const struct frame_header *h,
		      const uint8_t *body)
{
	struct frame_topic_created tc;
	if (frame_topic_created_decode(body, h->body_bytes, &tc) != SK_OK)
		return; /* frame_decode checked it */
	if (topic_find(v, h->topic_id) != NULL) {
		problem(v, seg_id, pos, "topic %" PRIu32 " created twice (index %" PRIu64 ")", h->topic_id,
			h->index);
		return;
	}
	if (v->topic_count == v->topic_cap) {
		size_t cap = v->topic_cap ? v->topic_cap * 2 : 64;
		struct vtopic *nt = realloc(v->topics, cap * sizeof(*nt));
		if (nt == NULL)
			return;
		v->topics = nt;
		v->topic_cap = cap;
	}
	v->topics[v->topic_count++] = (struct vtopic){.id = h->topic_id, .partitions = tc.partitions};
}

static void check_batch(struct verify *v, uint64_t seg_id, uint64_t pos, const struct frame_header *h)
{
	if (v->from_start) {
		const struct vtopic *t = topic_find(v, h->topic_id);
		if (t == NULL || h->partition >= t->partitions)
			problem(v, seg_id, pos, "record batch index %" PRIu64 " for unknown topic %" PRIu32
				" partition %" PRIu32, h->index, h->topic_id, h->partition);
	}
	bool is_new;
	struct vpart *p = part_get(v, h->topic_id, h->partition, &is_new);
	if (p == NULL)
		return;
	if (is_new) {
		p->first_offset = h->base_offset;
		if (v->from_start && h->base_offset != 0)
			problem(v, seg_id, pos, "topic %" PRIu32 " partition %" PRIu32 " starts at offset %" PRIu64,
				h->topic_id, h->partition, h->base_offset);
	} else if (h->base_offset != p->next_offset) {
		problem(v, seg_id, pos, "topic %" PRIu32 " partition %" PRIu32 " offset %" PRIu64
			", expected %" PRIu64 " (offsets not dense)", h->topic_id, h->partition,
			h->base_offset, p->next_offset);
	}
	p->next_offset = h->base_offset + h->record_count;
	p->records += h->record_count;
	p->frames++;
}

static void account(struct verify *v, uint64_t seg_id, uint64_t pos, const struct frame_header *h,
		    const uint8_t *frame)
{
	if (v->have_cp && v->cp.segment_id == seg_id && v->cp.position == pos && v->cp.index + 1 == h->index)
		v->cp_seen = true;
	v->frames++;
	v->bytes += h->length;
	v->kind_frames[h->kind]++;
	v->expect = h->index + 1;
	v->last_term = h->term;
	if (h->kind == FRAME_TOPIC_CREATED)
		topic_add(v, seg_id, pos, h, frame + SK_FRAME_HEADER_BYTES);
	else if (h->kind == FRAME_RECORD_BATCH)
		check_batch(v, seg_id, pos, h);
}

static bool zero_from(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Position of a valid frame after pos written once index expect was durable (0: none),
 * the rule recovery uses to tell damage from a torn tail (store/recovery.c). */
static uint64_t durable_after(const uint8_t *map, size_t len, uint64_t pos, uint64_t expect)
{
	for (uint64_t p = pos + SK_FRAME_ALIGN; p + SK_FRAME_HEADER_BYTES <= len; p += SK_FRAME_ALIGN) {
		uint32_t length;
		struct frame_header h;
		if (frame_header_plausible(map + p, len - p, &length) &&
		    frame_decode(map + p, len - p, &h, NULL) == SK_OK && h.durable_index >= expect)
			return p;
	}
	return 0;
}

/* Walk one segment; returns false if it could not be read. */
static bool verify_segment(struct verify *v, size_t k)
{
	uint64_t id = v->j->segs[k].id;
	if (k > 0 && id != v->expect)
		problem(v, id, 0, "segment starts at index %" PRIu64 ", expected %" PRIu64 " (%s)", id,
			v->expect, id > v->expect ? "missing segment" : "overlap");
	v->expect = id;
	size_t len;
	sk_err err;
	const uint8_t *map = journal_map_segment(v->j, id, &len, &err);
	if (err != SK_OK)
		return false;
	uint64_t pos = 0;
	while (pos < len) {
		struct frame_header h;
		const char *why = NULL;
		if (frame_decode(map + pos, len - pos, &h, &why) == SK_OK && h.index == v->expect &&
		    h.term >= v->last_term) {
			if (v->have_cp && v->cp.segment_id == id && v->cp.position == pos &&
			    v->cp.index + 1 != h.index)
				problem(v, id, pos, "meta.db checkpoint says index %" PRIu64 " ends here, frame has %" PRIu64,
					v->cp.index, h.index);
			account(v, id, pos, &h, map + pos);
			pos += h.length;
			continue;
		}
		if (why == NULL)
			why = "frame does not continue the log (index or term)";
		if (!zero_from(map + pos, len - pos)) {
			uint64_t at = durable_after(map, len, pos, v->expect);
			if (at != 0)
				problem(v, id, pos, "%s (index %" PRIu64 " expected): damage before the durable point, "
					"the frame at byte %" PRIu64 " was written after it was durable", why, v->expect, at);
			else
				problem(v, id, pos, "%s (index %" PRIu64 " expected): a torn tail, nothing after it was "
					"durable (the writer cuts it when it starts)", why, v->expect);
		}
		break;
	}
	if (v->have_cp && v->cp.segment_id == id && v->cp.position == pos && pos <= len)
		v->cp_seen = true; /* the checkpoint is the end of this segment's frames */
	journal_unmap_segment(map, len);
	return true;
}

static void read_meta(struct verify *v, const char *data_dir)
{
	meta *m;
	if (meta_open(data_dir, true, &m) != SK_OK)
		return;
	if (meta_checkpoint_get(m, &v->cp) == SK_OK && v->cp.segment_id != 0)
		v->have_cp = true;
	if (meta_applied_index(m, &v->applied) != SK_OK)
		v->applied = 0;
	meta_close(m);
}

static void print_summary(struct verify *v, FILE *out)
{
	size_t n = v->j->seg_count;
	fprintf(out, "journal: %s\n", v->j->dir);
	if (n > 0)
		fprintf(out, "segments: %zu (first %020" PRIu64 ", last %020" PRIu64 ")\n", n,
			v->j->segs[0].id, v->j->segs[n - 1].id);
	else
		fprintf(out, "segments: 0\n");
	fprintf(out, "frames: %" PRIu64 " (%" PRIu64 " bytes), last index %" PRIu64 ", last term %" PRIu64 "\n",
		v->frames, v->bytes, v->expect ? v->expect - 1 : 0, v->last_term);
	for (int kind = 1; kind <= FRAME_KIND_MAX; kind++)
		fprintf(out, "  %-17s %" PRIu64 "\n", frame_kind_name((uint16_t)kind), v->kind_frames[kind]);
	fprintf(out, "partitions: %zu\n", v->part_used);
	for (size_t i = 0; i < v->part_slots; i++) {
		const struct vpart *p = &v->parts[i];
		if (p->used)
			fprintf(out, "  topic %" PRIu32 " partition %" PRIu32 ": %" PRIu64 " records in %" PRIu64
				" frames, offsets %" PRIu64 "..%" PRIu64 "\n", p->topic_id, p->partition,
				p->records, p->frames, p->first_offset, p->next_offset);
	}
	if (v->problems == 0)
		fprintf(out, "result: clean\n");
	else
		fprintf(out, "first problem: %s\nproblems: %" PRIu64 "\nresult: NOT clean\n", v->first_problem,
			v->problems);
}

int verify_data_dir(const char *data_dir, FILE *out)
{
	struct verify v = {.out = out};
	sk_err err = journal_open_readonly(data_dir, &v.j);
	if (err != SK_OK) {
		fprintf(out, "cannot open %s/journal: %s\n", data_dir, sk_strerror(err));
		return err == SK_ENOTFOUND ? SK_VERIFY_PROBLEM : SK_VERIFY_IOERR;
	}
	read_meta(&v, data_dir);
	int rc = SK_VERIFY_CLEAN;
	if (v.j->seg_count > 0) {
		v.from_start = v.j->segs[0].id == 1;
		v.expect = v.j->segs[0].id;
	}
	for (size_t k = 0; k < v.j->seg_count; k++) {
		if (!verify_segment(&v, k)) {
			fprintf(out, "cannot read segment %020" PRIu64 "\n", v.j->segs[k].id);
			rc = SK_VERIFY_IOERR;
		}
	}
	uint64_t last = v.expect ? v.expect - 1 : 0;
	if (v.have_cp && !v.cp_seen && v.j->seg_count > 0 && v.cp.segment_id >= v.j->segs[0].id)
		problem(&v, v.cp.segment_id, v.cp.position, "meta.db checkpoint (index %" PRIu64
			") is not at a frame boundary", v.cp.index);
	if (v.applied > last && v.j->seg_count > 0)
		problem(&v, v.j->segs[v.j->seg_count - 1].id, 0, "meta.db applied index %" PRIu64
			" is past the last frame (index %" PRIu64 ")", v.applied, last);
	print_summary(&v, out);
	if (rc == SK_VERIFY_CLEAN && v.problems > 0)
		rc = SK_VERIFY_PROBLEM;
	free(v.parts);
	free(v.topics);
	journal_close(v.j);
	return rc;
}

int verify_main(const sk_config *cfg)
{
	return verify_data_dir(cfg->data_dir, stdout);
}
