#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/names.h"

static void test_names_refuses_empty_long_dots_and_other_bytes(void **state)
{
	char long_name[130];
	memset(long_name, 'a', sizeof(long_name));
	assert_false(sk_name_valid("", 0, 128));
	assert_false(sk_name_valid(NULL, 3, 128));
	assert_false(sk_name_valid(long_name, 129, 128));
	assert_false(sk_name_valid(".", 1, 128));
	assert_false(sk_name_valid("..", 2, 128));
	assert_false(sk_name_valid("a b", 3, 128));
	assert_false(sk_name_valid("a/b", 3, 128));
	assert_false(sk_name_valid("a\0b", 3, 128));
	assert_false(sk_name_valid("caf\xc3\xa9", 5, 128));
}

static void test_names_accepts_the_allowed_alphabet(void **state)
{
	char long_name[128];
	memset(long_name, 'z', sizeof(long_name));
	assert_true(sk_name_valid(long_name, 128, 128));
	assert_true(sk_name_valid("Az09._-", 7, 128));
	assert_true(sk_name_valid("...", 3, 128));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_refuses_empty_long_dots_and_other_bytes),
		cmocka_unit_test(test_names_accepts_the_allowed_alphabet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
