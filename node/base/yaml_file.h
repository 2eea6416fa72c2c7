/*
 * yaml_file.h - pieces shared by the readers of Portolan's YAML files (config.c for the node
 * settings, cluster_config.c for the cluster file): a bounded whole-file read and the words
 * their error messages use for libyaml events and scalars.
 */
#ifndef PT_YAML_FILE_H
#define PT_YAML_FILE_H

#include <stddef.h>
#include <yaml.h>

/* Reads the regular file at path (borrowed) whole into *out (owned: free()), *len bytes, at
 * most max. Returns 0, or PT_E_CONFIG with "path: reason" in errbuf (errlen bytes). */
int pt_yaml_read_file(const char *path, size_t max, char **out, size_t *len, char *errbuf,
                      size_t errlen);

/* "a mapping", "a list", "an alias", "a single value" or "unexpected YAML"; static storage. */
const char *pt_yaml_event_what(yaml_event_type_t t);

/* The text of a scalar event (borrowed from ev), NULL if it holds a NUL byte; a plain YAML
 * null (nothing, ~, null, Null, NULL) reads as "". */
const char *pt_yaml_scalar_text(const yaml_event_t *ev);

#endif
