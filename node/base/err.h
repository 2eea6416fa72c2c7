/*
 * err.h - the one registry of Portolan's error codes.
 *
 * Every failure inside the node is a negative int. PT_ERRORS lists each error once with the
 * HTTP status and the OCI distribution-spec error code (section "Error Codes") that a client
 * sees when the error reaches an HTTP handler, plus a default message. Foreign errors
 * (errno, RocksDB strings, RAFT_* codes, protobuf-c NULLs) are translated into these at the
 * module boundary that meets them.
 *
 * The values travel between regions (peer protocol statuses): new errors go at the end,
 * existing ones never move.
 */
#ifndef PT_ERR_H
#define PT_ERR_H

/* X(name, http status, OCI code, default message) */
#define PT_ERRORS(X)                                                                               \
    X(BLOB_UNKNOWN, 404, "BLOB_UNKNOWN", "blob unknown to registry")                               \
    X(BLOB_UPLOAD_INVALID, 400, "BLOB_UPLOAD_INVALID", "blob upload invalid")                      \
    X(BLOB_UPLOAD_UNKNOWN, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")          \
    X(DIGEST_INVALID, 400, "DIGEST_INVALID", "provided digest did not match uploaded content")     \
    X(MANIFEST_BLOB_UNKNOWN, 400, "MANIFEST_BLOB_UNKNOWN",                                         \
      "manifest references a manifest or blob unknown to registry")                                \
    X(MANIFEST_INVALID, 400, "MANIFEST_INVALID", "manifest invalid")                               \
    X(MANIFEST_UNKNOWN, 404, "MANIFEST_UNKNOWN", "manifest unknown to registry")                   \
    X(MANIFEST_TOO_LARGE, 413, "SIZE_INVALID", "manifest exceeds the size limit")                  \
    X(NAME_INVALID, 400, "NAME_INVALID", "invalid repository name")                                \
    X(NAME_UNKNOWN, 404, "NAME_UNKNOWN", "repository name not known to registry")                  \
    X(SIZE_INVALID, 400, "SIZE_INVALID", "provided length did not match content length")           \
    X(TOO_LARGE, 413, "SIZE_INVALID", "request body exceeds the size limit")                       \
    X(UNAUTHORIZED, 401, "UNAUTHORIZED", "authentication required")                                \
    X(DENIED, 403, "DENIED", "requested access to the resource is denied")                         \
    X(UNSUPPORTED, 405, "UNSUPPORTED", "the operation is unsupported")                             \
    X(UNSUPPORTED_MEDIA, 415, "UNSUPPORTED", "unsupported manifest media type")                    \
    X(TOOMANYREQUESTS, 429, "TOOMANYREQUESTS", "too many requests")                                \
    X(PAGINATION_NUMBER_INVALID, 400, "PAGINATION_NUMBER_INVALID",                                 \
      "invalid number of results requested")                                                       \
    X(RANGE_INVALID, 416, "RANGE_INVALID", "invalid content range")                                \
    X(TAG_INVALID, 400, "TAG_INVALID", "manifest tag did not match URI")                           \
    X(UNAVAILABLE, 503, "UNAVAILABLE", "service unavailable")                                      \
    X(NOT_FOUND, 404, "NOT_FOUND", "no such route")                                                \
    X(METHOD, 405, "UNSUPPORTED", "method not allowed on this route")                              \
    X(NOMEM, 500, "UNKNOWN", "out of memory")                                                      \
    X(IO, 500, "UNKNOWN", "storage I/O error")                                                     \
    X(CORRUPT, 500, "UNKNOWN", "stored data is corrupt")                                           \
    X(INTERNAL, 500, "UNKNOWN", "internal error")                                                  \
    X(CONFIG, 500, "UNKNOWN", "invalid configuration")                                             \
    X(CONFLICT, 409, "DENIED", "conflicts with the cluster configuration")                         \
    X(INVALID, 400, "INVALID", "invalid request")                                                  \
    X(EXISTS, 409, "EXISTS", "already exists")                                                     \
    X(DISK_FULL, 507, "UNAVAILABLE",                                                               \
      "insufficient storage: free space below the reserve, retry later")                           \
    X(QUOTA_EXCEEDED, 403, "DENIED", "storage quota exceeded")

enum pt_err {
    PT_OK = 0,
    PT__ERR_BASE = -1000,
#define PT__ERR_ENUM(name, status, code, msg) PT_E_##name,
    PT_ERRORS(PT__ERR_ENUM)
#undef PT__ERR_ENUM
        PT__ERR_END
};

/* HTTP status for err (500 for unknown values). */
int pt_err_status(int err);
/* OCI error code string for err; static storage. */
const char *pt_err_code(int err);
/* Default human-readable message for err; static storage. */
const char *pt_err_message(int err);

#endif
