/* A hint to the CPU inside a polling loop: lets the sibling hyper-thread run
 * and saves power while one side waits on shared memory for the other. */
#ifndef SK_COMMON_CPU_H
#define SK_COMMON_CPU_H

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
