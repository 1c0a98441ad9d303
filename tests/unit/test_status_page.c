/* Tests of the status page (ipc/status_page.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipc/status_page.h"

static void test_status_page_attach_rejects_wrong_size_magic_and_version(void **state)
{
	struct sk_status_page *page;
	int small = memfd_create("small", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(small >= 0);
	assert_int_equal(ftruncate(small, 4096), 0);
	assert_int_equal(status_page_attach(small, &page), SK_ECORRUPT);
	close(small);

	int fd;
	struct sk_status_page *owner;
	assert_int_equal(status_page_create(&fd, &owner), SK_OK);
	/* Sealed: nobody can shrink it under the others. */
	assert_true(ftruncate(fd, 4096) != 0);
	owner->version = 99;
	assert_int_equal(status_page_attach(fd, &page), SK_EVERSION);
	owner->version = SK_STATUS_VERSION;
	owner->magic ^= 1;
	assert_int_equal(status_page_attach(fd, &page), SK_ECORRUPT);
	owner->magic ^= 1;
	assert_int_equal(status_page_attach(fd, &page), SK_OK);
	status_page_detach(page);

	/* Right size and contents but unsealed: refused. */
	int plain = memfd_create("plain", MFD_CLOEXEC);
	assert_true(plain >= 0);
	assert_int_equal(ftruncate(plain, SK_STATUS_PAGE_BYTES), 0);
	assert_int_equal(pwrite(plain, owner, SK_STATUS_PAGE_BYTES, 0), SK_STATUS_PAGE_BYTES);
	assert_int_equal(status_page_attach(plain, &page), SK_EINVAL);
	close(plain);
	status_page_detach(owner);
	close(fd);
}

static void test_status_page_is_shared_between_mappings(void **state)
{
	int fd;
	struct sk_status_page *owner, *worker;
	assert_int_equal(status_page_create(&fd, &owner), SK_OK);
	assert_int_equal(atomic_load(&owner->durable_index), 0);
	assert_int_equal(status_page_attach(fd, &worker), SK_OK);
	atomic_store(&worker->durable_index, 77);
	atomic_store(&worker->ready[2], 1);
	assert_int_equal(atomic_load(&owner->durable_index), 77);
	assert_int_equal(atomic_load(&owner->ready[2]), 1);
	status_page_detach(worker);
	status_page_detach(owner);
	close(fd);
}

static void test_status_page_counts_fsyncs_into_latency_buckets(void **state)
{
	int fd;
	struct sk_status_page *page;
	assert_int_equal(status_page_create(&fd, &page), SK_OK);
	status_page_count_fsync(page, 0, 1, 10);	     /* bucket 0 */
	status_page_count_fsync(page, 16000, 2, 20);	     /* <= 16 us: bucket 0 */
	status_page_count_fsync(page, 16001, 3, 30);	     /* bucket 1 */
	status_page_count_fsync(page, 150000, 4, 40);	     /* 150 us <= 256 us: bucket 4 */
	status_page_count_fsync(page, 3600000000ull, 5, 50); /* an hour: last bucket */
	assert_int_equal(atomic_load(&page->fsync_count), 5);
	assert_int_equal(atomic_load(&page->fsync_records), 15);
	assert_int_equal(atomic_load(&page->fsync_bytes), 150);
	assert_int_equal(atomic_load(&page->fsync_ns_total),
			 3600000000ull + 150000 + 16001 + 16000);
	assert_int_equal(atomic_load(&page->fsync_bucket[0]), 2);
	assert_int_equal(atomic_load(&page->fsync_bucket[1]), 1);
	assert_int_equal(atomic_load(&page->fsync_bucket[4]), 1);
	assert_int_equal(atomic_load(&page->fsync_bucket[SK_FSYNC_BUCKETS - 1]), 1);
	status_page_detach(page);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_page_attach_rejects_wrong_size_magic_and_version),
	    cmocka_unit_test(test_status_page_is_shared_between_mappings),
	    cmocka_unit_test(test_status_page_counts_fsyncs_into_latency_buckets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
