/* One-member group (raft_single.h). */
#include "workers/raft/raft_single.h"

bool raft_single_step(struct raft_single *s, uint64_t node_id, uint64_t durable_index,
		      uint64_t durable_term)
{
	struct raft_single next = *s;
	if (durable_index > next.commit_index)
		next.commit_index = durable_index;
	uint64_t term = durable_term > 0 ? durable_term : 1;
	if (term > next.term)
		next.term = term;
	next.leader_id = node_id;
	bool changed = next.commit_index != s->commit_index || next.term != s->term ||
		       next.leader_id != s->leader_id;
	*s = next;
	return changed;
}
