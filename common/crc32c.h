/* CRC32C (Castagnoli). Uses the SSE4.2 crc32 instruction when the CPU has it,
 * a slicing table otherwise; both give identical results. */
#ifndef SK_CRC32C_H
#define SK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over len bytes at data. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table implementation, exported so tests can compare. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
