/* The http worker's topic cache over meta.db (opened read-only; only the
 * writer writes it). Every produce resolves its topic here, so the lookup is a
 * binary search in memory. The cache is reloaded when the writer moves
 * status_page.topics_version, and a miss asks meta.db once for that name (the
 * writer may apply a topic before it moves the version). Topics the writer
 * just confirmed through a completion are remembered in a small side table
 * until meta.db shows them, so a produce right after a create never gets 404. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "workers/http/http_worker.h"

#define TOPICS_LEARNED_MAX 64
#define TOPICS_OPEN_RETRY_MS 100

static struct {
	char data_dir[SK_PATH_BYTES_MAX];
	const struct sk_status_page *page;
	meta *m;
	uint64_t open_tried_ms;
	struct http_topic *topics; /* sorted by name */
	uint32_t count;
	struct meta_topic *scratch;
	bool loaded;
	uint64_t version;
	struct http_topic learned[TOPICS_LEARNED_MAX];
	uint32_t learned_count;
	uint32_t learned_next;
} T;

static int topic_cmp(const void *a, const void *b)
{
	return strcmp(((const struct http_topic *)a)->t.name, ((const struct http_topic *)b)->t.name);
}

static meta *topics_meta(void)
{
	if (T.m)
		return T.m;
	uint64_t now = clock_mono_ms();
	if (T.open_tried_ms && now - T.open_tried_ms < TOPICS_OPEN_RETRY_MS)
		return NULL;
	T.open_tried_ms = now;
	sk_err err = meta_open(T.data_dir, true, &T.m);
	if (err != SK_OK) {
		T.m = NULL;
		if (err != SK_ENOTFOUND)
			log_warn("http_meta_open_failed", "err=%s dir=%s", sk_errname(err), T.data_dir);
		return NULL;
	}
	return T.m;
}

meta *http_topics_meta(void) { return topics_meta(); }

/* Drop learned topics that meta.db now shows. */
static void learned_prune(void)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < T.learned_count; i++) {
		struct http_topic key = {0};
		memcpy(key.t.name, T.learned[i].t.name, sizeof(key.t.name));
		if (!bsearch(&key, T.topics, T.count, sizeof(*T.topics), topic_cmp))
			T.learned[kept++] = T.learned[i];
	}
	T.learned_count = kept;
	T.learned_next = kept % TOPICS_LEARNED_MAX;
}

static sk_err topics_reload(void)
{
	meta *m = topics_meta();
	if (!m)
		return SK_EAGAIN;
	uint64_t version = atomic_load(&T.page->topics_version);
	uint32_t n = 0;
	sk_err err = meta_topics_list(m, T.scratch, SK_TOPICS_MAX, &n);
	if (err != SK_OK) {
		log_warn("http_topics_reload_failed", "err=%s", sk_errname(err));
		return SK_EAGAIN;
	}
	for (uint32_t i = 0; i < n; i++) {
		T.topics[i].t = T.scratch[i];
		T.topics[i].rr = 0;
	}
	T.count = n;
	qsort(T.topics, n, sizeof(*T.topics), topic_cmp);
	T.version = version;
	T.loaded = true;
	learned_prune();
	return SK_OK;
}

static void topics_refresh(void)
{
	if (!T.loaded || atomic_load(&T.page->topics_version) != T.version)
		(void)topics_reload();
}

static struct http_topic *topics_lookup(const char *name)
{
	struct http_topic key;
	size_t n = strlen(name);
	memcpy(key.t.name, name, n + 1);
	struct http_topic *t = bsearch(&key, T.topics, T.count, sizeof(*T.topics), topic_cmp);
	if (t)
		return t;
	for (uint32_t i = 0; i < T.learned_count; i++)
		if (strcmp(T.learned[i].t.name, name) == 0)
			return &T.learned[i];
	return NULL;
}

sk_err http_topic_find(const char *name, size_t len, struct http_topic **out)
{
	char buf[SK_TOPIC_NAME_BYTES_MAX + 1];
	if (len == 0 || len > SK_TOPIC_NAME_BYTES_MAX)
		return SK_ENOTFOUND;
	memcpy(buf, name, len);
	buf[len] = 0;
	topics_refresh();
	*out = topics_lookup(buf);
	if (*out)
		return SK_OK;
	meta *m = topics_meta();
	if (!m)
		return T.loaded ? SK_ENOTFOUND : SK_EAGAIN;
	struct meta_topic mt;
	sk_err err = meta_topic_by_name(m, buf, &mt);
	if (err == SK_ENOTFOUND)
		return SK_ENOTFOUND;
	if (err != SK_OK)
		return SK_EAGAIN;
	/* meta.db has it but the version did not move yet: reload now. */
	if (topics_reload() == SK_OK && (*out = topics_lookup(buf)) != NULL)
		return SK_OK;
	http_topics_learn(mt.name, mt.id, mt.partitions);
	*out = topics_lookup(buf);
	return *out ? SK_OK : SK_ENOTFOUND;
}

void http_topics_learn(const char *name, uint32_t id, uint32_t partitions)
{
	size_t n = strlen(name);
	if (n == 0 || n > SK_TOPIC_NAME_BYTES_MAX || topics_lookup(name))
		return;
	struct http_topic *t = &T.learned[T.learned_next];
	memset(t, 0, sizeof(*t));
	memcpy(t->t.name, name, n + 1);
	t->t.id = id;
	t->t.partitions = partitions;
	T.learned_next = (T.learned_next + 1) % TOPICS_LEARNED_MAX;
	if (T.learned_count < TOPICS_LEARNED_MAX)
		T.learned_count++;
}

sk_err http_topics_each(void (*fn)(const struct http_topic *t, void *arg), void *arg)
{
	topics_refresh();
	if (!T.loaded)
		return SK_EAGAIN;
	for (uint32_t i = 0; i < T.count; i++)
		fn(&T.topics[i], arg);
	for (uint32_t i = 0; i < T.learned_count; i++)
		fn(&T.learned[i], arg);
	return SK_OK;
}

sk_err http_topics_init(const char *data_dir, const struct sk_status_page *page)
{
	memset(&T, 0, sizeof(T));
	size_t n = strlen(data_dir);
	if (n >= sizeof(T.data_dir))
		return SK_EINVAL;
	memcpy(T.data_dir, data_dir, n + 1);
	T.page = page;
	T.topics = calloc(SK_TOPICS_MAX, sizeof(*T.topics));
	T.scratch = calloc(SK_TOPICS_MAX, sizeof(*T.scratch));
	if (!T.topics || !T.scratch)
		return SK_ENOMEM;
	(void)topics_reload(); /* meta.db may not exist yet: retried on use */
	return SK_OK;
}

void http_topics_fini(void)
{
	meta_close(T.m);
	free(T.topics);
	free(T.scratch);
	memset(&T, 0, sizeof(T));
}
