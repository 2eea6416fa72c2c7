/*
 * blob_sync_wire.h - the BlobWant a transfer asks with (proto/peer.proto), private to
 * replication/blob_sync*.c and their tests.
 *
 * A transfer encodes each BlobWant into a buffer of WANT_BUF bytes on the stack: the room it
 * needs is checked before anything is written, so a message that would not fit (nothing
 * valid comes close: a sha512 digest and two varints take 155 bytes at most) fails with an
 * error instead of writing past the buffer. Kept apart from blob_sync_int.h so that a test
 * can include it without the service's internal names.
 */
#ifndef PT_BLOB_SYNC_WIRE_H
#define PT_BLOB_SYNC_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Room for one encoded BlobWant. */
#define WANT_BUF 192

/*
 * Encodes BlobWant{digest (borrowed), offset, length} into buf (borrowed, cap bytes); *len
 * gets the encoded size. PT_E_TOO_LARGE, with nothing written, when it would not fit.
 */
int bsync_encode_want(const char *digest, uint64_t offset, uint32_t length, void *buf, size_t cap,
                      size_t *len);

#endif
