/* The status page (ipc/status_page.h): a memfd of SK_STATUS_PAGE_BYTES, sealed
 * so that no worker can shrink it under the others (SIGBUS) or grow it. */
#include "ipc/status_page.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sk_status_page *status_page_map(int fd)
{
	void *map = mmap(NULL, SK_STATUS_PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return map == MAP_FAILED ? NULL : map;
}

sk_err status_page_create(int *fd_out, struct sk_status_page **page_out)
{
	int fd = memfd_create("skiff-status", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return SK_EIO;
	if (ftruncate(fd, SK_STATUS_PAGE_BYTES) != 0)
		goto out_close_fd;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		goto out_close_fd;
	struct sk_status_page *page = status_page_map(fd);
	if (!page)
		goto out_close_fd;
	/* ftruncate zero-filled the page: every counter and index starts at 0. */
	page->magic = SK_STATUS_MAGIC;
	page->version = SK_STATUS_VERSION;
	page->bytes = SK_STATUS_PAGE_BYTES;
	atomic_thread_fence(memory_order_release);
	*fd_out = fd;
	*page_out = page;
	return SK_OK;

out_close_fd:
	close(fd);
	return SK_EIO;
}

sk_err status_page_attach(int fd, struct sk_status_page **page_out)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return SK_EIO;
	if (st.st_size != SK_STATUS_PAGE_BYTES)
		return SK_ECORRUPT;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & F_SEAL_SHRINK) == 0)
		return SK_EINVAL; /* unsealed: could be shrunk under us */
	struct sk_status_page *page = status_page_map(fd);
	if (!page)
		return SK_EIO;
	sk_err err = SK_OK;
	if (page->magic != SK_STATUS_MAGIC || page->bytes != SK_STATUS_PAGE_BYTES)
		err = SK_ECORRUPT;
	else if (page->version != SK_STATUS_VERSION)
		err = SK_EVERSION;
	if (err != SK_OK) {
		munmap(page, SK_STATUS_PAGE_BYTES);
		return err;
	}
	*page_out = page;
	return SK_OK;
}

void status_page_detach(struct sk_status_page *page)
{
	if (page)
		munmap(page, SK_STATUS_PAGE_BYTES);
}

/* Bucket i counts durations <= 2^i * 16 us; the last bucket takes everything longer. */
static unsigned status_page_fsync_bucket(uint64_t duration_ns)
{
	uint64_t limit_ns = 16000;
	for (unsigned i = 0; i < SK_FSYNC_BUCKETS - 1; i++, limit_ns *= 2)
		if (duration_ns <= limit_ns)
			return i;
	return SK_FSYNC_BUCKETS - 1;
}

void status_page_count_fsync(struct sk_status_page *page, uint64_t duration_ns, uint64_t records,
			     uint64_t bytes)
{
	/* Single writer (the writer worker): relaxed adds, readers only need each counter whole. */
	atomic_fetch_add_explicit(&page->fsync_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&page->fsync_records, records, memory_order_relaxed);
	atomic_fetch_add_explicit(&page->fsync_bytes, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&page->fsync_ns_total, duration_ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&page->fsync_bucket[status_page_fsync_bucket(duration_ns)], 1,
				  memory_order_relaxed);
}
