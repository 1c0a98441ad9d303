/* `skiffd worker NAME -c FILE`: pick the worker's ops (see worker_rt.h). */
#include "workers/worker_rt.h"

int worker_run(enum sk_worker_id id, const char *config_path)
{
	static const struct worker_ops *const ops[SK_WORKER_COUNT] = {
		[SK_W_WRITER] = &writer_ops,
		[SK_W_RAFT] = &raft_ops,
		[SK_W_REPLAY] = &replay_ops,
		[SK_W_HTTP] = &http_ops,
	};
	if ((unsigned)id >= SK_WORKER_COUNT)
		return SK_EXIT_SOFTWARE;
	return worker_main(id, config_path, ops[id]);
}
