/* A standalone driver for LLVMFuzzerTestOneInput() targets when the compiler
 * has no libFuzzer (gcc). It runs a bounded number of inputs, deterministic
 * for a seed: the target's seeds (optional weak sk_fuzz_seed()), mutations of
 * them (bit flips, byte overwrites, truncations, insertions, interesting u32
 * values) and plain random buffers. A crash or sanitizer report fails the ctest.
 *
 *   fuzz_x [-runs=N] [-seed=S] [FILE...]   FILEs are extra seeds (and are run first) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRIVER_INPUT_BYTES_MAX 65536
#define DRIVER_SEEDS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A target may provide seeds: fill buf (cap bytes) with seed i, return its size, 0 = no more. */
size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap) __attribute__((weak));

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	/* splitmix64: deterministic for a seed, good enough for mutations. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t mutate_once(uint8_t *buf, size_t len, size_t cap)
{
	static const uint32_t interesting[] = {0, 1, 7, 8, 79, 80, 81, 0x7f, 0x80, 0xff, 0x100,
					       0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff};
	size_t at = len ? rng_next() % len : 0;
	switch (rng_next() % 6) {
	case 0: /* flip one bit */
		if (len)
			buf[at] ^= (uint8_t)(1u << (rng_next() % 8));
		return len;
	case 1: /* overwrite one byte */
		if (len)
			buf[at] = (uint8_t)rng_next();
		return len;
	case 2: /* truncate */
		return len ? rng_next() % len : 0;
	case 3: /* insert a byte */
		if (len >= cap)
			return len;
		memmove(buf + at + 1, buf + at, len - at);
		buf[at] = (uint8_t)rng_next();
		return len + 1;
	case 4: /* an interesting little-endian u32 at an aligned spot */
		at &= ~(size_t)3;
		if (at + 4 <= len) {
			uint32_t v = interesting[rng_next() % (sizeof(interesting) / sizeof(interesting[0]))];
			for (int i = 0; i < 4; i++)
				buf[at + i] = (uint8_t)(v >> (8 * i));
		}
		return len;
	default: /* append random bytes */
		while (len < cap && rng_next() % 4 != 0)
			buf[len++] = (uint8_t)rng_next();
		return len;
	}
}

/* Run the input from a heap buffer of exactly its size, so ASan sees any over-read. */
static void run_one(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	LLVMFuzzerTestOneInput(copy, size);
	free(copy);
}

static size_t load_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(2);
	}
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	static uint8_t seeds[DRIVER_SEEDS_MAX][DRIVER_INPUT_BYTES_MAX];
	static size_t seed_len[DRIVER_SEEDS_MAX];
	static uint8_t buf[DRIVER_INPUT_BYTES_MAX];
	unsigned nseeds = 0;
	unsigned long long runs = 100000;
	rng_state = 1;
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "-runs=", 6) == 0)
			runs = strtoull(argv[i] + 6, NULL, 10);
		else if (strncmp(argv[i], "-seed=", 6) == 0)
			rng_state = strtoull(argv[i] + 6, NULL, 10);
		else if (argv[i][0] != '-' && nseeds < DRIVER_SEEDS_MAX) {
			seed_len[nseeds] = load_file(argv[i], seeds[nseeds], DRIVER_INPUT_BYTES_MAX);
			nseeds++;
		}
	}
	while (sk_fuzz_seed && nseeds < DRIVER_SEEDS_MAX) {
		size_t n = sk_fuzz_seed(nseeds, seeds[nseeds], DRIVER_INPUT_BYTES_MAX);
		if (n == 0)
			break;
		seed_len[nseeds++] = n;
	}
	for (unsigned s = 0; s < nseeds; s++)
		run_one(seeds[s], seed_len[s]);
	for (unsigned long long r = 0; r < runs; r++) {
		size_t len;
		if (nseeds > 0 && rng_next() % 8 != 0) {
			unsigned s = (unsigned)(rng_next() % nseeds);
			len = seed_len[s];
			memcpy(buf, seeds[s], len);
			unsigned rounds = 1 + (unsigned)(rng_next() % 4);
			for (unsigned m = 0; m < rounds; m++)
				len = mutate_once(buf, len, sizeof(buf));
		} else {
			len = rng_next() % 512;
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rng_next();
		}
		run_one(buf, len);
	}
	printf("fuzz driver: %llu runs, %u seeds, no crash\n", runs, nseeds);
	return 0;
}
