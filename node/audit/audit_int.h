/*
 * audit_int.h - what the writer (audit.c) and the reader (audit_verify.c) of the audit log
 * share: file names, the line hash and reading a file's last line. Private to node/audit/.
 */
#ifndef PT_AUDIT_INT_H
#define PT_AUDIT_INT_H

#include "audit.h"

#include <stddef.h>
#include <stdint.h>

#define PT_AUDIT_FILE "audit.log"
/* Rotated files considered by pt_audit_list: audit.log.1 .. audit.log.<this>. */
#define PT_AUDIT_KEEP_MAX 10000

/* The hex SHA-256 of p[0..len) (borrowed) into out. */
void pt_audit_hash_hex(const void *p, size_t len, char out[PT_AUDIT_HASH_HEX]);

/* Writes "<dir>/audit.log" (n == 0) or "<dir>/audit.log.<n>" into dst (len bytes); 0, or -1
 * when it does not fit. */
int pt_audit_path(char *dst, size_t len, const char *dir, unsigned n);

/*
 * Reads the last line of the file open on fd (borrowed) into buf (PT_AUDIT_LINE_MAX + 1
 * bytes), without its '\n': *len its length (0 for an empty file), *size the file's size,
 * *torn 1 when the file does not end in '\n'. Returns 0, PT_E_IO, or PT_E_CORRUPT when no line
 * starts within PT_AUDIT_LINE_MAX + 1 bytes of the end.
 */
int pt_audit_last_line(int fd, char *buf, size_t *len, uint64_t *size, int *torn);

#endif
