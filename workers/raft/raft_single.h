/* The consensus core of a one-member group, as a pure function: no I/O, no clock.
 * Durable index in, commit index out. The cluster work replaces this module with a
 * full Raft state machine behind the same kind of step function (DESIGN.md §8). */
#ifndef SK_RAFT_SINGLE_H
#define SK_RAFT_SINGLE_H

#include <stdbool.h>
#include <stdint.h>

struct raft_single {
	uint64_t commit_index; /* never moves backwards */
	uint64_t term;         /* >= 1 once stepped */
	uint64_t leader_id;    /* this node */
};

/* One step: the writer reports durable_index / durable_term. In a one-member group
 * the local fdatasync is the majority, so commit = durable. Returns true when the
 * state changed (commit index, term or leader). */
bool raft_single_step(struct raft_single *s, uint64_t node_id, uint64_t durable_index,
		      uint64_t durable_term);

#endif
