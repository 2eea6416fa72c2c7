/*
 * framing.h - is an HTTP/1 request head's body framing ambiguous (request smuggling)?
 *
 * Role: server.c checks every HTTP/1 request head before the request is handled; h2o 2.2.5
 * frames a body by the first Content-Length, or by Transfer-Encoding when both are present,
 * and keeps neither header in req->headers, so the raw head is read here.
 * Threads: pure function, any thread.
 */
#ifndef PT_HTTP_FRAMING_H
#define PT_HTTP_FRAMING_H

#include <stddef.h>

/*
 * head: the raw request head (borrowed), from the request line up to the blank line or the end
 * of the given bytes, whichever comes first; lines end in "\n" or "\r\n".
 * Returns 1 when the framing is ambiguous (RFC 9112 section 6.3): a Content-Length next to a
 * Transfer-Encoding, Content-Length values that differ, or a Content-Length holding a list
 * (','); 0 otherwise (equal repeated Content-Length values are allowed). Header names match
 * case-insensitively; values are compared after trimming spaces and tabs. Never fails.
 */
int pt_http_framing_ambiguous(const char *head, size_t len);

#endif
