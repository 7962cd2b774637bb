/*
 * fuzz_queue_env.c - libFuzzer target for queue_env_parse(): any bytes
 * must either parse or be refused, never crash, leak or read out of
 * bounds.  What parses must format and parse again to the same envelope.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_env env, again;
	struct buf b;
	size_t i;

	if (queue_env_parse((const char *)data, size, &env) < 0)
		return 0;
	buf_init(&b, BUF_UNLIMITED);
	if (queue_env_format(&env, &b) < 0)
		abort();		/* parsed but cannot be written back */
	if (queue_env_parse(b.data, b.len, &again) < 0)
		abort();
	if (strcmp(env.id, again.id) != 0 ||
	    strcmp(env.sender, again.sender) != 0 ||
	    strcmp(env.last_error, again.last_error) != 0 ||
	    env.created != again.created || env.next_try != again.next_try ||
	    env.attempts != again.attempts || env.nrcpts != again.nrcpts)
		abort();
	for (i = 0; i < env.nrcpts; i++)
		if (strcmp(env.rcpts[i].address, again.rcpts[i].address) != 0 ||
		    strcmp(env.rcpts[i].orcpt, again.rcpts[i].orcpt) != 0 ||
		    env.rcpts[i].status != again.rcpts[i].status)
			abort();
	queue_env_free(&again);
	queue_env_free(&env);
	buf_free(&b);
	return 0;
}
