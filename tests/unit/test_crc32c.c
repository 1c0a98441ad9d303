#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"

/* RFC 3720 B.4 test vectors. */
static void test_crc32c_matches_rfc3720_vectors(void **state)
{
	uint8_t buf[32];
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, buf, 32), 0x46dd794e);
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
}

static void test_crc32c_hardware_and_table_agree_at_every_length(void **state)
{
	uint8_t buf[1031];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len += 13)
			assert_int_equal(crc32c(0, buf + off, len), crc32c_sw(0, buf + off, len));
}

static void test_crc32c_extends_incrementally(void **state)
{
	const char *s = "the quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);
	for (size_t cut = 0; cut <= n; cut++)
		assert_int_equal(crc32c(crc32c(0, s, cut), s + cut, n - cut), crc32c(0, s, n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_matches_rfc3720_vectors),
		cmocka_unit_test(test_crc32c_hardware_and_table_agree_at_every_length),
		cmocka_unit_test(test_crc32c_extends_incrementally),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
