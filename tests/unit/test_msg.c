/* Tests of the ring payload codecs (ipc/msg.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/config.h"
#include "ipc/msg.h"

#define MSG_BUF_BYTES 512

/* A valid request of each kind, with name and body set as that kind wants. */
static struct msg_req valid_req(uint8_t kind)
{
	struct msg_req r = {
	    .kind = kind,
	    .ack = SK_ACK_LOCAL,
	    .topic_id = 7,
	    .partition = 3,
	    .arg = 0x1122334455667788ull,
	    .arg2 = 0x99aabbccddeeff00ull,
	    .now_ms = 1795000000123ull,
	};
	switch (kind) {
	case MSG_REQ_PRODUCE:
		r.record_count = 2;
		r.body = (const uint8_t *)"0123456789abcdefghij";
		r.body_len = 20;
		break;
	case MSG_REQ_CREATE_TOPIC:
		r.topic_id = 0;
		r.name = (const uint8_t *)"orders";
		r.name_len = 6;
		break;
	case MSG_REQ_COMMIT:
		r.name = (const uint8_t *)"billing";
		r.name_len = 7;
		break;
	default:
		break;
	}
	return r;
}

/* Encode header + name + body into buf the way a producer builds its iovecs. */
static size_t encode_req(uint8_t *buf, const struct msg_req *r)
{
	msg_req_encode_header(buf, r);
	size_t n = SK_MSG_REQ_HEADER_BYTES;
	if (r->name_len)
		memcpy(buf + n, r->name, r->name_len);
	n += r->name_len;
	if (r->body_len)
		memcpy(buf + n, r->body, r->body_len);
	return n + r->body_len;
}

static const uint8_t all_kinds[] = {MSG_REQ_PRODUCE, MSG_REQ_CREATE_TOPIC, MSG_REQ_COMMIT,
				    MSG_REQ_DELETE_BEFORE, MSG_REQ_RETENTION};
#define KIND_COUNT (sizeof(all_kinds) / sizeof(all_kinds[0]))

static struct msg_completion valid_completion(uint8_t kind)
{
	return (struct msg_completion){
	    .kind = kind,
	    .status = SK_ECONFLICT,
	    .flags = MSG_FLAG_DUPLICATE | MSG_FLAG_CREATED,
	    .partition = 0xfedcba98u,
	    .req_seq = 0x0102030405060708ull,
	    .offset = 42,
	    .index = 1ull << 40,
	    .count = 1000,
	    .topic_id = 12,
	    .current = UINT64_MAX,
	};
}

/* ---- must reject ---- */

static void test_msg_req_rejects_every_truncation(void **state)
{
	for (size_t k = 0; k < KIND_COUNT; k++) {
		struct msg_req r = valid_req(all_kinds[k]);
		uint8_t buf[MSG_BUF_BYTES];
		size_t n = encode_req(buf, &r);
		struct msg_req out;
		assert_int_equal(msg_req_decode(buf, n, &out), SK_OK);
		for (size_t cut = 0; cut < n; cut++)
			assert_int_equal(msg_req_decode(buf, cut, &out), SK_ECORRUPT);
		/* One byte too many is as wrong as one too few. */
		buf[n] = 0;
		assert_int_equal(msg_req_decode(buf, n + 1, &out), SK_ECORRUPT);
	}
}

static void test_msg_req_rejects_an_unknown_version(void **state)
{
	struct msg_req r = valid_req(MSG_REQ_PRODUCE);
	uint8_t buf[MSG_BUF_BYTES];
	size_t n = encode_req(buf, &r);
	struct msg_req out;
	for (int v = 0; v < 256; v++) {
		if (v == SK_MSG_VERSION)
			continue;
		buf[0] = (uint8_t)v;
		assert_int_equal(msg_req_decode(buf, n, &out), SK_EVERSION);
		assert_int_equal(msg_req_decode(buf, 1, &out), SK_EVERSION);
	}
}

static void test_msg_req_rejects_lengths_past_the_buffer(void **state)
{
	struct msg_req r = valid_req(MSG_REQ_COMMIT);
	uint8_t buf[MSG_BUF_BYTES];
	size_t n = encode_req(buf, &r);
	struct msg_req out;
	put_u16(buf + 40, 8); /* name one past the end */
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	put_u16(buf + 40, UINT16_MAX);
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	put_u16(buf + 40, 7);
	put_u32(buf + 44, UINT32_MAX); /* name + body would wrap a 32-bit sum */
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	put_u16(buf + 40, 6);
	put_u32(buf + 44, 1); /* the sum matches, but a commit carries no body */
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);

	r = valid_req(MSG_REQ_PRODUCE);
	n = encode_req(buf, &r);
	put_u32(buf + 44, 21);
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	put_u32(buf + 44, UINT32_MAX);
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
}

static void test_msg_req_rejects_unknown_kind_ack_flags_and_bad_shapes(void **state)
{
	uint8_t buf[MSG_BUF_BYTES];
	struct msg_req out;
	struct msg_req r = valid_req(MSG_REQ_DELETE_BEFORE);
	size_t n = encode_req(buf, &r);
	const uint8_t bad_kinds[] = {0, 6, 200, 255};
	for (size_t i = 0; i < sizeof(bad_kinds); i++) {
		buf[1] = bad_kinds[i];
		assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	}
	buf[1] = MSG_REQ_DELETE_BEFORE;
	buf[2] = SK_ACK_ALL + 1;
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	buf[2] = SK_ACK_NONE;
	buf[3] = 1; /* flags */
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	buf[3] = 0;
	buf[43] = 1; /* reserved */
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	buf[43] = 0;
	assert_int_equal(msg_req_decode(buf, n, &out), SK_OK);

	/* Shapes that contradict the kind. */
	struct msg_req shapes[6];
	shapes[0] = valid_req(MSG_REQ_PRODUCE);
	shapes[0].record_count = 0;
	shapes[1] = valid_req(MSG_REQ_PRODUCE);
	shapes[1].body_len = 0;
	shapes[2] = valid_req(MSG_REQ_CREATE_TOPIC);
	shapes[2].topic_id = 5;
	shapes[3] = valid_req(MSG_REQ_CREATE_TOPIC);
	shapes[3].name_len = 0;
	shapes[4] = valid_req(MSG_REQ_COMMIT);
	shapes[4].record_count = 1;
	shapes[5] = valid_req(MSG_REQ_RETENTION);
	shapes[5].name = (const uint8_t *)"x";
	shapes[5].name_len = 1;
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		n = encode_req(buf, &shapes[i]);
		assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
	}

	/* A topic name over its limit. */
	uint8_t long_name[SK_TOPIC_NAME_BYTES_MAX + 1];
	memset(long_name, 'a', sizeof(long_name));
	r = valid_req(MSG_REQ_CREATE_TOPIC);
	r.name = long_name;
	r.name_len = SK_TOPIC_NAME_BYTES_MAX;
	n = encode_req(buf, &r);
	assert_int_equal(msg_req_decode(buf, n, &out), SK_OK);
	r.name_len = SK_TOPIC_NAME_BYTES_MAX + 1;
	n = encode_req(buf, &r);
	assert_int_equal(msg_req_decode(buf, n, &out), SK_ECORRUPT);
}

static void test_msg_completion_rejects_truncation_version_and_bad_fields(void **state)
{
	struct msg_completion c = valid_completion(MSG_REQ_PRODUCE);
	uint8_t buf[SK_MSG_COMPLETION_BYTES + 1];
	msg_completion_encode(buf, &c);
	struct msg_completion out;
	for (size_t cut = 0; cut < SK_MSG_COMPLETION_BYTES; cut++)
		assert_int_equal(msg_completion_decode(buf, cut, &out), SK_ECORRUPT);
	buf[SK_MSG_COMPLETION_BYTES] = 0;
	assert_int_equal(msg_completion_decode(buf, SK_MSG_COMPLETION_BYTES + 1, &out),
			 SK_ECORRUPT);

	buf[0] = 2;
	assert_int_equal(msg_completion_decode(buf, SK_MSG_COMPLETION_BYTES, &out), SK_EVERSION);
	assert_int_equal(msg_completion_decode(buf, 1, &out), SK_EVERSION);
	buf[0] = SK_MSG_VERSION;

	const struct {
		size_t at;
		uint8_t value;
	} bad[] = {{1, 0}, {1, 6},    {2, SK_ERR_COUNT}, {2, 255},
		   {3, 4}, {3, 0x80}, {48, 1},		 {55, 1}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t copy[SK_MSG_COMPLETION_BYTES];
		memcpy(copy, buf, sizeof(copy));
		copy[bad[i].at] = bad[i].value;
		assert_int_equal(msg_completion_decode(copy, sizeof(copy), &out), SK_ECORRUPT);
	}
	assert_int_equal(msg_completion_decode(buf, SK_MSG_COMPLETION_BYTES, &out), SK_OK);
}

/* ---- round trips ---- */

static void test_msg_req_round_trips_every_kind(void **state)
{
	for (size_t k = 0; k < KIND_COUNT; k++) {
		struct msg_req r = valid_req(all_kinds[k]);
		uint8_t buf[MSG_BUF_BYTES];
		size_t n = encode_req(buf, &r);
		assert_int_equal(n, SK_MSG_REQ_HEADER_BYTES + r.name_len + r.body_len);
		struct msg_req out;
		assert_int_equal(msg_req_decode(buf, n, &out), SK_OK);
		assert_int_equal(out.kind, r.kind);
		assert_int_equal(out.ack, r.ack);
		assert_int_equal(out.topic_id, r.topic_id);
		assert_int_equal(out.partition, r.partition);
		assert_int_equal(out.record_count, r.record_count);
		assert_int_equal(out.arg, r.arg);
		assert_int_equal(out.arg2, r.arg2);
		assert_int_equal(out.now_ms, r.now_ms);
		assert_int_equal(out.name_len, r.name_len);
		assert_int_equal(out.body_len, r.body_len);
		if (r.name_len) {
			assert_ptr_equal(out.name, buf + SK_MSG_REQ_HEADER_BYTES); /* no copy */
			assert_memory_equal(out.name, r.name, r.name_len);
		}
		if (r.body_len)
			assert_memory_equal(out.body, r.body, r.body_len);
	}
}

static void test_msg_req_header_is_little_endian_field_by_field(void **state)
{
	struct msg_req r = valid_req(MSG_REQ_PRODUCE);
	uint8_t buf[MSG_BUF_BYTES];
	encode_req(buf, &r);
	const uint8_t want[SK_MSG_REQ_HEADER_BYTES] = {
	    1,	  1,	1,    0,    7,	  0,	0,    0,    3,	  0,	0,    0,
	    2,	  0,	0,    0,    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
	    0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x7b, 0x5e, 0x56, 0xee,
	    0xa1, 0x01, 0,    0,    0,	  0,	0,    0,    20,	  0,	0,    0,
	};
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_msg_completion_round_trips_every_kind(void **state)
{
	for (size_t k = 0; k < KIND_COUNT; k++) {
		struct msg_completion c = valid_completion(all_kinds[k]);
		uint8_t buf[SK_MSG_COMPLETION_BYTES];
		msg_completion_encode(buf, &c);
		struct msg_completion out;
		assert_int_equal(msg_completion_decode(buf, sizeof(buf), &out), SK_OK);
		assert_int_equal(out.kind, c.kind);
		assert_int_equal(out.status, c.status);
		assert_int_equal(out.flags, c.flags);
		assert_int_equal(out.partition, c.partition);
		assert_int_equal(out.req_seq, c.req_seq);
		assert_int_equal(out.offset, c.offset);
		assert_int_equal(out.index, c.index);
		assert_int_equal(out.count, c.count);
		assert_int_equal(out.topic_id, c.topic_id);
		assert_int_equal(out.current, c.current);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_msg_req_rejects_every_truncation),
	    cmocka_unit_test(test_msg_req_rejects_an_unknown_version),
	    cmocka_unit_test(test_msg_req_rejects_lengths_past_the_buffer),
	    cmocka_unit_test(test_msg_req_rejects_unknown_kind_ack_flags_and_bad_shapes),
	    cmocka_unit_test(test_msg_completion_rejects_truncation_version_and_bad_fields),
	    cmocka_unit_test(test_msg_req_round_trips_every_kind),
	    cmocka_unit_test(test_msg_req_header_is_little_endian_field_by_field),
	    cmocka_unit_test(test_msg_completion_round_trips_every_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
