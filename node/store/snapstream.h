/*
 * snapstream.h - a streaming reader of the snapshot stream (the format drawn at the top of
 * metastore_snapshot.c), for snapshots kept in files and restored in bounded batches.
 *
 * Role: reads a stream of any size from a read function in pieces, checks it as it goes
 * (magic, version, family names and order, record bounds, keys strictly ascending, the
 * trailing SHA-256 over everything before it, nothing after it) and hands every record to a
 * callback. It knows no RocksDB: the store gives it the format's names and bounds, so the
 * libFuzzer driver runs it alone.
 *
 * Memory: one read buffer of PT_SNAPSTREAM_CHUNK bytes, grown to hold the largest record
 * (key_max + value_max + 8) when one needs it, and one copy of the previous key. Never the
 * whole stream.
 *
 * Invariant: a callback sees a record only after every byte before it was checked; the
 * stream as a whole is known good only once pt_snapstream_read returns 0 (the checksum is
 * at the end), so a consumer must not make what it wrote authoritative before that.
 * Threads: any; one reader per call, no shared state.
 */
#ifndef PT_SNAPSTREAM_H
#define PT_SNAPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#define PT_SNAPSTREAM_CHUNK  (1u << 20)
#define PT_SNAPSTREAM_SUMLEN 32

/* The names and bounds of the format, as the store defines them (borrowed). */
struct pt_snapstream_format {
    const char *const *families; /* family names in stream order */
    unsigned n_families;
    unsigned meta_family;    /* the family whose applied_key record never travels */
    const char *applied_key; /* ... that record's key */
    size_t applied_key_len;
    size_t key_max, value_max; /* keys 1..key_max bytes, values at most value_max */
    uint32_t version;          /* the one version accepted */
};

/* Reads up to cap bytes into buf; *got = 0 at the end of the input. 0 or a PT_E_* error. */
typedef int (*pt_snapstream_read_fn)(void *arg, void *buf, size_t cap, size_t *got);

/* What the reader calls (any may be NULL). A non-zero return stops the read with it. */
struct pt_snapstream_sink {
    /* after the header: the stream's applied index */
    int (*begin)(void *arg, uint64_t index);
    /* one record of family (index into format->families); k and v borrowed for the call */
    int (*record)(void *arg, unsigned family, const void *k, size_t klen, const void *v,
                  size_t vlen);
    void *arg;
};

/* What a complete read found. */
struct pt_snapstream_info {
    uint64_t index;                                  /* applied index from the header */
    uint64_t size;                                   /* bytes read, trailer included */
    uint64_t records;                                /* records handed to the sink */
    unsigned char file_sha256[PT_SNAPSTREAM_SUMLEN]; /* SHA-256 of every byte read */
};

/*
 * Reads and checks one whole stream from read_fn(read_arg) and hands its records to sink
 * (borrowed; NULL checks only). Returns 0 and fills *info (may be NULL) when the stream is
 * complete and valid; PT_E_CORRUPT when it is damaged, truncated, of another version, breaks
 * the format or has bytes after its end; PT_E_NOMEM; or the error of read_fn or of a sink
 * callback.
 */
int pt_snapstream_read(const struct pt_snapstream_format *format, pt_snapstream_read_fn read_fn,
                       void *read_arg, const struct pt_snapstream_sink *sink,
                       struct pt_snapstream_info *info);

#endif
