/*
 * yaml_file.h - the one YAML walker of Portolan's YAML files (config.c for the node settings,
 * cluster_config.c for the cluster file): a bounded whole-file read, the event loop over a
 * text, and the words their error messages use for libyaml events and scalars. Each reader
 * keeps only its own state machine: which events may come where.
 */
#ifndef PT_YAML_FILE_H
#define PT_YAML_FILE_H

#include <stddef.h>
#include <yaml.h>

/* Reads the regular file at path (borrowed) whole into *out (owned: free()), *len bytes, at
 * most max. Returns 0, or PT_E_CONFIG with "path: reason" in errbuf (errlen bytes). */
int pt_yaml_read_file(const char *path, size_t max, char **out, size_t *len, char *errbuf,
                      size_t errlen);

/* Called for every event inside the document, in order (the root node's events; not the
 * stream's and document's own); returns 0 to go on, or an error (with its message already in
 * the caller's errbuf) to stop the walk. */
typedef int (*pt_yaml_event_cb)(void *arg, const yaml_event_t *ev);

/* Parses text[0..len) (borrowed) with libyaml: a stream of at most one document, whose events
 * go to cb. An empty stream (no document) calls cb never and returns 0. A syntax error, a
 * second document or an event out of place stops the walk with PT_E_CONFIG and
 * "name:line: reason" in errbuf; name (borrowed) stands for the file in messages. Returns 0,
 * cb's error or PT_E_CONFIG. */
int pt_yaml_walk(const char *text, size_t len, const char *name, pt_yaml_event_cb cb, void *arg,
                 char *errbuf, size_t errlen);

/* "a mapping", "a list", "an alias", "a single value" or "unexpected YAML"; static storage. */
const char *pt_yaml_event_what(yaml_event_type_t t);

/* The text of a scalar event (borrowed from ev), NULL if it holds a NUL byte; a plain YAML
 * null (nothing, ~, null, Null, NULL) reads as "". */
const char *pt_yaml_scalar_text(const yaml_event_t *ev);

#endif
