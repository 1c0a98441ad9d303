/* /metrics: Prometheus text exposition (version 0.0.4).
 *
 * Counted here: requests by route and status, produce latency (from the start
 * of the handler to the answer). Read from the status page: fdatasync count,
 * records and bytes per fdatasync, fdatasync latency buckets, commit/durable
 * index, writer state, worker restarts. From the pending module: ingress ring
 * bytes in use, completion ring depth, waiting requests, timeouts. Counters
 * are plain integers: the worker is single-threaded. */
#include <event2/buffer.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "ipc/status_page.h"
#include "workers/http/http_pending.h"
#include "workers/http/http_worker.h"

static const int statuses[] = {200, 201, 400, 401, 404, 405, 409, 411, 413,
			       416, 431, 500, 503, 507};
#define STATUS_COUNT (sizeof(statuses) / sizeof(statuses[0]))
#define STATUS_OTHER STATUS_COUNT

/* Produce latency buckets, upper bounds in microseconds. */
static const uint64_t lat_us[] = {100,   250,    500,    1000,   2500,    5000,    10000,
				  25000, 50000, 100000, 250000, 500000, 1000000, 5000000};
#define LAT_COUNT (sizeof(lat_us) / sizeof(lat_us[0]))

static struct {
	uint64_t requests[HTTP_R_COUNT][STATUS_COUNT + 1];
	uint64_t lat[LAT_COUNT + 1];
	uint64_t lat_sum_ns;
	uint64_t lat_count;
} M;

static unsigned status_index(int status)
{
	for (unsigned i = 0; i < STATUS_COUNT; i++)
		if (statuses[i] == status)
			return i;
	return STATUS_OTHER;
}

void http_metrics_count_route(enum http_route route, int status)
{
	if ((unsigned)route >= HTTP_R_COUNT)
		route = HTTP_R_NONE;
	M.requests[route][status_index(status)]++;
}

void http_metrics_count(const char *route, int status)
{
	for (int r = 0; r < HTTP_R_COUNT; r++)
		if (strcmp(http_route_label((enum http_route)r), route) == 0) {
			http_metrics_count_route((enum http_route)r, status);
			return;
		}
	http_metrics_count_route(HTTP_R_NONE, status);
}

void http_metrics_produce_latency(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned i = 0;
	while (i < LAT_COUNT && us > lat_us[i])
		i++;
	M.lat[i]++;
	M.lat_sum_ns += ns;
	M.lat_count++;
}

static void render_requests(struct evbuffer *out)
{
	evbuffer_add_printf(out, "# HELP skiff_http_requests_total HTTP requests answered, by "
				 "route and status.\n# TYPE skiff_http_requests_total counter\n");
	for (int r = 0; r < HTTP_R_COUNT; r++)
		for (unsigned s = 0; s <= STATUS_COUNT; s++) {
			uint64_t n = M.requests[r][s];
			if (!n)
				continue;
			char code[8] = "other";
			if (s < STATUS_COUNT)
				snprintf(code, sizeof(code), "%d", statuses[s]);
			evbuffer_add_printf(out,
					    "skiff_http_requests_total{route=\"%s\",status=\"%s\"} "
					    "%llu\n",
					    http_route_label((enum http_route)r), code,
					    (unsigned long long)n);
		}
}

static void render_latency(struct evbuffer *out)
{
	evbuffer_add_printf(out, "# HELP skiff_produce_latency_seconds Produce requests, from the "
				 "handler to the answer.\n"
				 "# TYPE skiff_produce_latency_seconds histogram\n");
	uint64_t cum = 0;
	for (unsigned i = 0; i < LAT_COUNT; i++) {
		cum += M.lat[i];
		evbuffer_add_printf(out, "skiff_produce_latency_seconds_bucket{le=\"%g\"} %llu\n",
				    (double)lat_us[i] / 1e6, (unsigned long long)cum);
	}
	evbuffer_add_printf(out,
			    "skiff_produce_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
			    "skiff_produce_latency_seconds_sum %.9f\n"
			    "skiff_produce_latency_seconds_count %llu\n",
			    (unsigned long long)M.lat_count, (double)M.lat_sum_ns / 1e9,
			    (unsigned long long)M.lat_count);
}

static void render_fsync(struct evbuffer *out, const struct sk_status_page *pg)
{
	uint64_t count = atomic_load(&pg->fsync_count);
	uint64_t records = atomic_load(&pg->fsync_records);
	evbuffer_add_printf(out,
			    "# HELP skiff_fsync_total fdatasync calls by the writer.\n"
			    "# TYPE skiff_fsync_total counter\nskiff_fsync_total %llu\n"
			    "# HELP skiff_fsync_records_total Records made durable, summed over "
			    "fdatasyncs.\n# TYPE skiff_fsync_records_total counter\n"
			    "skiff_fsync_records_total %llu\n"
			    "# HELP skiff_fsync_bytes_total Bytes made durable.\n"
			    "# TYPE skiff_fsync_bytes_total counter\nskiff_fsync_bytes_total %llu\n"
			    "# HELP skiff_records_per_fsync Records per fdatasync since the writer's "
			    "counters began.\n# TYPE skiff_records_per_fsync gauge\n"
			    "skiff_records_per_fsync %.3f\n",
			    (unsigned long long)count, (unsigned long long)records,
			    (unsigned long long)atomic_load(&pg->fsync_bytes),
			    count ? (double)records / (double)count : 0.0);
	evbuffer_add_printf(out, "# HELP skiff_fsync_duration_seconds fdatasync latency.\n"
				 "# TYPE skiff_fsync_duration_seconds histogram\n");
	uint64_t cum = 0, limit_us = 16;
	for (unsigned i = 0; i < SK_FSYNC_BUCKETS - 1; i++, limit_us *= 2) {
		cum += atomic_load(&pg->fsync_bucket[i]);
		evbuffer_add_printf(out, "skiff_fsync_duration_seconds_bucket{le=\"%g\"} %llu\n",
				    (double)limit_us / 1e6, (unsigned long long)cum);
	}
	cum += atomic_load(&pg->fsync_bucket[SK_FSYNC_BUCKETS - 1]);
	evbuffer_add_printf(out,
			    "skiff_fsync_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
			    "skiff_fsync_duration_seconds_sum %.9f\n"
			    "skiff_fsync_duration_seconds_count %llu\n",
			    (unsigned long long)cum, (double)atomic_load(&pg->fsync_ns_total) / 1e9,
			    (unsigned long long)count);
}

static void render_workers(struct evbuffer *out, const struct sk_status_page *pg)
{
	evbuffer_add_printf(out, "# HELP skiff_worker_restarts_total Restarts per worker.\n"
				 "# TYPE skiff_worker_restarts_total counter\n");
	for (int w = 0; w < SK_WORKER_COUNT; w++)
		evbuffer_add_printf(out, "skiff_worker_restarts_total{worker=\"%s\"} %llu\n",
				    cfg_worker_name((enum sk_worker_id)w),
				    (unsigned long long)atomic_load(&pg->worker_restarts[w]));
	evbuffer_add_printf(out, "# HELP skiff_worker_ready 1 when the worker reported ready.\n"
				 "# TYPE skiff_worker_ready gauge\n");
	for (int w = 0; w < SK_WORKER_COUNT; w++)
		evbuffer_add_printf(out, "skiff_worker_ready{worker=\"%s\"} %u\n",
				    cfg_worker_name((enum sk_worker_id)w),
				    (unsigned)atomic_load(&pg->ready[w]));
	evbuffer_add_printf(out,
			    "# TYPE skiff_commit_index gauge\nskiff_commit_index %llu\n"
			    "# TYPE skiff_durable_index gauge\nskiff_durable_index %llu\n"
			    "# HELP skiff_writer_state 0 starting, 1 ok, 2 storage full, 3 failed.\n"
			    "# TYPE skiff_writer_state gauge\nskiff_writer_state %u\n"
			    "# TYPE skiff_ring_malformed_total counter\nskiff_ring_malformed_total %llu\n",
			    (unsigned long long)atomic_load(&pg->commit_index),
			    (unsigned long long)atomic_load(&pg->durable_index),
			    (unsigned)atomic_load(&pg->writer_state),
			    (unsigned long long)atomic_load(&pg->ring_malformed));
}

static void render_http(struct evbuffer *out)
{
	struct http_pending_stats ps;
	http_pending_stats(&ps);
	evbuffer_add_printf(
		out,
		"# HELP skiff_ingress_ring_bytes Bytes of the ingress ring in use.\n"
		"# TYPE skiff_ingress_ring_bytes gauge\nskiff_ingress_ring_bytes %llu\n"
		"# TYPE skiff_ingress_ring_capacity_bytes gauge\nskiff_ingress_ring_capacity_bytes %llu\n"
		"# HELP skiff_completion_ring_bytes Completions not yet read by http.\n"
		"# TYPE skiff_completion_ring_bytes gauge\nskiff_completion_ring_bytes %llu\n"
		"# HELP skiff_http_waiting Requests waiting for the writer or the commit index.\n"
		"# TYPE skiff_http_waiting gauge\nskiff_http_waiting %llu\n"
		"# TYPE skiff_http_timeouts_total counter\nskiff_http_timeouts_total %llu\n"
		"# TYPE skiff_http_completions_ignored_total counter\n"
		"skiff_http_completions_ignored_total %llu\n"
		"# TYPE skiff_http_completions_malformed_total counter\n"
		"skiff_http_completions_malformed_total %llu\n"
		"# HELP skiff_http_tick_answers_total Requests answered by the 10 ms safety-net "
		"tick instead of a wake-up (growing while raft is down; otherwise a lost wake-up).\n"
		"# TYPE skiff_http_tick_answers_total counter\nskiff_http_tick_answers_total %llu\n"
		"# TYPE skiff_http_connections gauge\nskiff_http_connections %u\n"
		"# TYPE skiff_http_connections_refused_total counter\n"
		"skiff_http_connections_refused_total %llu\n",
		(unsigned long long)ps.ring_bytes_used, (unsigned long long)ps.ring_bytes_capacity,
		(unsigned long long)ps.completion_ring_bytes, (unsigned long long)ps.pending,
		(unsigned long long)ps.timeouts, (unsigned long long)ps.completions_ignored,
		(unsigned long long)ps.completions_malformed, (unsigned long long)ps.tick_answers,
		http_server_open_count(),
		(unsigned long long)http_server_refused_count());
}

void http_metrics_render(struct evbuffer *out, const struct sk_status_page *page)
{
	render_requests(out);
	render_latency(out);
	render_fsync(out, page);
	render_workers(out, page);
	render_http(out);
}
